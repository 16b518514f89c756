//! The line-level parser: BuildKit's `frontend/dockerfile/parser` package.
//!
//! Turns the text into one [`Node`] per instruction (continuations joined,
//! comments dropped, flags split off, arguments split the way each
//! instruction's line parser splits them, heredoc bodies read), and collects
//! parser directives, comments and warnings. Typed instructions are built
//! from the nodes in `instruction.rs`.

use crate::error::Located;
use crate::gocompat::json::{parse_string_array, ArrayError};
use crate::gocompat::unicode::is_space;
use crate::heredoc::{heredocs_from_line, Heredoc};
use regex::Regex;
use std::collections::BTreeSet;
use std::sync::LazyLock;

/// A parser directive (`# syntax=...`, `# escape=...`, `# check=...`) from the top of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directive {
    /// Lower-cased name: `syntax`, `escape` or `check`.
    pub name: String,
    /// The value with surrounding whitespace removed.
    pub value: String,
    /// 1-based line.
    pub line: usize,
}

/// A comment line (not a parser directive), kept for linters honouring
/// inline `# kiln:ignore=RULE` comments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Comment {
    /// 1-based line.
    pub line: usize,
    /// The text after `#`, with surrounding whitespace removed.
    pub text: String,
}

/// A non-fatal finding of the parser (BuildKit prints these as warnings).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// 1-based line the warning points at.
    pub line: usize,
    /// BuildKit's text, e.g. `Empty continuation line found in: RUN a     b`.
    pub message: String,
}

/// One instruction as the line parser leaves it (BuildKit's `parser.Node`,
/// with its argument list flattened the way `instructions.nodeArgs` does).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Node {
    /// The instruction word as written (`RUN`, `run`, ...).
    pub(crate) cmd: String,
    pub(crate) flags: Vec<String>,
    pub(crate) args: Vec<String>,
    /// The arguments were a JSON array (exec form).
    pub(crate) json: bool,
    /// ONBUILD's trigger.
    pub(crate) sub: Option<Box<Node>>,
    pub(crate) heredocs: Vec<Heredoc>,
    /// The logical line: continuations joined, comments removed.
    pub(crate) original: String,
    pub(crate) start_line: usize,
    pub(crate) end_line: usize,
}

impl Node {
    fn can_contain_heredoc(&self) -> bool {
        let node = match (&self.sub, self.cmd.eq_ignore_ascii_case("onbuild")) {
            (Some(sub), true) => sub,
            _ => self,
        };
        let lower = node.cmd.to_ascii_lowercase();
        matches!(lower.as_str(), "add" | "copy" | "run") && !node.json
    }
}

/// Everything the line parser produces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Lines {
    pub(crate) nodes: Vec<Node>,
    pub(crate) directives: Vec<Directive>,
    pub(crate) comments: Vec<Comment>,
    pub(crate) warnings: Vec<Warning>,
    pub(crate) escape: char,
}

/// Go's `bufio.MaxScanTokenSize`: BuildKit cannot read longer lines.
const MAX_LINE: usize = 64 * 1024;

static DIRECTIVE: LazyLock<Regex> = LazyLock::new(|| {
    // Go's \s is ASCII whitespace without \v.
    Regex::new(
        r"^#[\t\n\x0C\r ]*([a-zA-Z][a-zA-Z0-9]*)[\t\n\x0C\r ]*=[\t\n\x0C\r ]*(.+?)[\t\n\x0C\r ]*$",
    )
    .expect("static regex")
});

struct DirectiveParser {
    done: bool,
    seen: BTreeSet<String>,
}

impl DirectiveParser {
    fn parse_line(&mut self, line: &str) -> Result<Option<(String, String)>, String> {
        if self.done {
            return Ok(None);
        }
        let Some(caps) = DIRECTIVE.captures(line) else {
            self.done = true;
            return Ok(None);
        };
        let key = caps[1].to_ascii_lowercase();
        if !matches!(key.as_str(), "syntax" | "escape" | "check") {
            self.done = true;
            return Ok(None);
        }
        if !self.seen.insert(key.clone()) {
            return Err(format!("only one {key} parser directive can be used"));
        }
        Ok(Some((key, caps[2].to_string())))
    }
}

pub(crate) fn is_comment(line: &str) -> bool {
    line.trim_start_matches(is_space).starts_with('#')
}

fn trim_newline(s: &str) -> &str {
    s.trim_end_matches(['\r', '\n'])
}

/// Removes a line-continuation escape at the end of `line`. Returns the line
/// and whether it ended the instruction (no continuation).
///
/// Same as BuildKit's regex `([^E])E[ \t]*$|^E[ \t]*$`: an escape preceded by
/// another escape does not continue the line.
fn trim_continuation(line: &str, escape: char) -> (String, bool) {
    let trimmed = line.trim_end_matches([' ', '\t']);
    let Some(before) = trimmed.strip_suffix(escape) else {
        return (line.to_string(), true);
    };
    match before.chars().last() {
        None => (String::new(), false),
        Some(c) if c != escape => (before.to_string(), false),
        Some(_) => (line.to_string(), true),
    }
}

/// Go's `regexp.MustCompile("[\t\v\f\r ]+").Split(s, n)`.
pub(crate) fn split_whitespace_go(s: &str, n: isize) -> Vec<String> {
    let is_ws = |b: u8| matches!(b, b'\t' | b'\x0B' | b'\x0C' | b'\r' | b' ');
    if s.is_empty() {
        return vec![String::new()];
    }
    let bytes = s.as_bytes();
    let mut matches = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if is_ws(bytes[i]) {
            let start = i;
            while i < bytes.len() && is_ws(bytes[i]) {
                i += 1;
            }
            matches.push((start, i));
        } else {
            i += 1;
        }
    }
    let mut out = Vec::new();
    let (mut beg, mut end) = (0, 0);
    for (m0, m1) in matches {
        if n > 0 && out.len() as isize == n - 1 {
            break;
        }
        end = m0;
        if m1 != 0 {
            out.push(s[beg..end].to_string());
        }
        beg = m1;
    }
    if end != s.len() {
        out.push(s[beg..].to_string());
    }
    out
}

/// BuildKit's `extractBuilderFlags`: leading `--flag` words (quotes and `\`
/// escapes processed) and the rest of the line.
///
/// BuildKit walks this line byte by byte and treats each byte as a Latin-1
/// character, so non-ASCII flag values come out mangled; that is reproduced.
fn extract_flags(line: &str) -> (String, Vec<String>) {
    let b = line.as_bytes();
    let space = |c: u8| is_space(char::from(c));
    let rest_from = |pos: usize| String::from_utf8_lossy(&b[pos..]).into_owned();
    #[derive(PartialEq)]
    enum Phase {
        Spaces,
        Word,
        Quote,
    }
    let mut words = Vec::new();
    let mut phase = Phase::Spaces;
    let mut word = String::new();
    let mut quote = 0u8;
    let mut blank_ok = false;
    let mut pos = 0;
    while pos <= b.len() {
        let ch = if pos < b.len() { b[pos] } else { 0 };
        if phase == Phase::Spaces {
            if pos == b.len() {
                break;
            }
            if space(ch) {
                pos += 1;
                continue;
            }
            if ch != b'-' || pos + 1 == b.len() || b[pos + 1] != b'-' {
                return (rest_from(pos), words);
            }
            phase = Phase::Word;
        }
        if pos == b.len() {
            if word != "--" && (blank_ok || !word.is_empty()) {
                words.push(word);
            }
            break;
        }
        if phase == Phase::Word {
            if space(ch) {
                phase = Phase::Spaces;
                if word == "--" {
                    return (rest_from(pos), words);
                }
                if blank_ok || !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
                word.clear();
                blank_ok = false;
                pos += 1;
                continue;
            }
            if ch == b'\'' || ch == b'"' {
                quote = ch;
                blank_ok = true;
                phase = Phase::Quote;
                pos += 1;
                continue;
            }
            let mut c = ch;
            if ch == b'\\' {
                if pos + 1 == b.len() {
                    pos += 1;
                    continue;
                }
                pos += 1;
                c = b[pos];
            }
            word.push(char::from(c));
            pos += 1;
            continue;
        }
        // In quotes.
        if ch == quote {
            phase = Phase::Word;
            pos += 1;
            continue;
        }
        let mut c = ch;
        if ch == b'\\' {
            if pos + 1 == b.len() {
                phase = Phase::Word;
                pos += 1;
                continue;
            }
            pos += 1;
            c = b[pos];
        }
        word.push(char::from(c));
        pos += 1;
    }
    (String::new(), words)
}

/// BuildKit's `splitCommand`: instruction word, flags, and trimmed arguments.
fn split_command(line: &str) -> (String, Vec<String>, String) {
    let parts = split_whitespace_go(line.trim_matches(is_space), 2);
    let cmd = parts[0].clone();
    if parts.len() == 2 {
        let (args, flags) = extract_flags(&parts[1]);
        (cmd, flags, args.trim_matches(is_space).to_string())
    } else {
        (cmd, Vec::new(), String::new())
    }
}

/// BuildKit's `parseWords`: whitespace-separated words, quotes and escapes kept.
pub(crate) fn parse_words(rest: &str, escape: char) -> Vec<String> {
    #[derive(PartialEq)]
    enum Phase {
        Spaces,
        Word,
        Quote,
    }
    let chars: Vec<char> = rest.chars().collect();
    let mut words = Vec::new();
    let mut phase = Phase::Spaces;
    let mut quote = '\0';
    let mut blank_ok = false;
    let mut word = String::new();
    let mut pos = 0;
    while pos <= chars.len() {
        let at_end = pos == chars.len();
        let ch = if at_end { '\0' } else { chars[pos] };
        if phase == Phase::Spaces {
            if at_end {
                break;
            }
            if is_space(ch) {
                pos += 1;
                continue;
            }
            phase = Phase::Word;
        }
        if at_end {
            if blank_ok || !word.is_empty() {
                words.push(word);
            }
            break;
        }
        if phase == Phase::Word {
            if is_space(ch) {
                phase = Phase::Spaces;
                if blank_ok || !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
                blank_ok = false;
                pos += 1;
                continue;
            }
            if ch == '\'' || ch == '"' {
                quote = ch;
                blank_ok = true;
                phase = Phase::Quote;
            }
            let mut c = ch;
            if ch == escape {
                if pos + 1 == chars.len() {
                    pos += 1;
                    continue;
                }
                word.push(ch);
                pos += 1;
                c = chars[pos];
            }
            word.push(c);
            pos += 1;
            continue;
        }
        // In quotes.
        if ch == quote {
            phase = Phase::Word;
        }
        let mut c = ch;
        if ch == escape && quote != '\'' {
            if pos + 1 == chars.len() {
                phase = Phase::Word;
                pos += 1;
                continue;
            }
            pos += 1;
            word.push(ch);
            c = chars[pos];
        }
        word.push(c);
        pos += 1;
    }
    words
}

const NOT_STRING_ARRAY: &str =
    "when using JSON array syntax, arrays must be comprised of strings only";

/// Parsed arguments: the words and whether they came from a JSON array.
type Args = (Vec<String>, bool);

fn parse_json(rest: &str) -> Result<Vec<String>, ArrayError> {
    let t = rest.trim_start_matches(is_space);
    if !t.starts_with('[') {
        return Err(ArrayError::Invalid);
    }
    parse_string_array(t)
}

fn parse_maybe_json(rest: &str) -> Result<Args, String> {
    if rest.is_empty() {
        return Ok((Vec::new(), false));
    }
    match parse_json(rest) {
        Ok(v) => Ok((v, true)),
        Err(ArrayError::NotStrings) => Err(NOT_STRING_ARRAY.into()),
        Err(ArrayError::Invalid) => Ok((vec![rest.to_string()], false)),
    }
}

fn parse_whitespace_delimited(rest: &str) -> Vec<String> {
    if rest.is_empty() {
        return Vec::new();
    }
    split_whitespace_go(rest, -1)
}

fn parse_maybe_json_to_list(rest: &str) -> Result<Args, String> {
    match parse_json(rest) {
        Ok(v) => Ok((v, true)),
        Err(ArrayError::NotStrings) => Err(NOT_STRING_ARRAY.into()),
        Err(ArrayError::Invalid) => Ok((parse_whitespace_delimited(rest), false)),
    }
}

/// ENV and LABEL: `key=value ...` or the legacy `key value`; flattened as
/// `[key, value, "=" or ""]` triples like BuildKit's node list.
fn parse_name_val(rest: &str, key: &str, escape: char) -> Result<Vec<String>, String> {
    let words = parse_words(rest, escape);
    if words.is_empty() {
        return Ok(Vec::new());
    }
    if !words[0].contains('=') {
        let parts = split_whitespace_go(rest, 2);
        if parts.len() < 2 {
            return Err(format!("{key} must have two arguments"));
        }
        return Ok(vec![parts[0].clone(), parts[1].clone(), String::new()]);
    }
    let mut out = Vec::new();
    for w in words {
        let Some((k, v)) = w.split_once('=') else {
            return Err(format!(
                "Syntax error - can't find = in {}. Must be of the form: name=value",
                crate::gocompat::strconv::quote(&w)
            ));
        };
        out.extend([k.to_string(), v.to_string(), "=".to_string()]);
    }
    Ok(out)
}

fn parse_health_config(rest: &str) -> Result<Args, String> {
    // BuildKit scans bytes here, treating each as a Latin-1 character.
    let b = rest.as_bytes();
    let space = |c: u8| is_space(char::from(c));
    let sep = b.iter().position(|&c| space(c)).unwrap_or(b.len());
    let next = b[sep..]
        .iter()
        .position(|&c| !space(c))
        .map_or(b.len(), |p| sep + p);
    if sep == 0 {
        return Ok((Vec::new(), false));
    }
    let typ = String::from_utf8_lossy(&b[..sep]).into_owned();
    let (cmd, json) = parse_maybe_json(&String::from_utf8_lossy(&b[next..]))?;
    let mut args = vec![typ];
    args.extend(cmd);
    Ok((args, json))
}

/// BuildKit's `newNodeFromLine`.
fn node_from_line(line: &str, escape: char) -> Result<Node, String> {
    let (cmd, flags, rest) = split_command(line);
    let mut sub = None;
    let (args, json) = match cmd.to_ascii_lowercase().as_str() {
        "add" | "copy" | "volume" => parse_maybe_json_to_list(&rest)?,
        "run" | "cmd" | "entrypoint" | "shell" => parse_maybe_json(&rest)?,
        "env" => (parse_name_val(&rest, "ENV", escape)?, false),
        "label" => (parse_name_val(&rest, "LABEL", escape)?, false),
        "arg" => (parse_words(&rest, escape), false),
        "expose" | "from" => (parse_whitespace_delimited(&rest), false),
        "maintainer" | "stopsignal" | "user" | "workdir" => (
            if rest.is_empty() {
                Vec::new()
            } else {
                vec![rest.clone()]
            },
            false,
        ),
        "healthcheck" => parse_health_config(&rest)?,
        "onbuild" => {
            if rest.is_empty() {
                (Vec::new(), false)
            } else {
                let child = node_from_line(&rest, escape)?;
                let mut args = vec![child.cmd.clone()];
                args.extend(child.args.iter().cloned());
                sub = Some(Box::new(child));
                (args, false)
            }
        }
        // Unknown instructions are rejected later, with their line.
        _ => (vec![String::new()], false),
    };
    Ok(Node {
        cmd,
        flags,
        args,
        json,
        sub,
        heredocs: Vec::new(),
        original: line.to_string(),
        start_line: 0,
        end_line: 0,
    })
}

/// Parses the whole text into instruction nodes (BuildKit's `parser.Parse`).
pub(crate) fn parse_lines(text: &str) -> Result<Lines, Located> {
    let mut lines: Vec<&str> = text.split_inclusive('\n').collect();
    // BuildKit's scanner stops at a line it cannot buffer.
    let too_long = lines
        .iter()
        .position(|l| l.strip_suffix('\n').unwrap_or(l).len() >= MAX_LINE);
    if let Some(i) = too_long {
        lines.truncate(i);
    }

    let mut escape = '\\';
    let mut dp = DirectiveParser {
        done: false,
        seen: BTreeSet::new(),
    };
    let mut out = Lines {
        nodes: Vec::new(),
        directives: Vec::new(),
        comments: Vec::new(),
        warnings: Vec::new(),
        escape,
    };
    let mut idx = 0;
    let mut current = 0usize;

    // BuildKit's processLine: trims, feeds the directive parser, drops comments.
    let mut process =
        |raw: &str, strip_left: bool, line_no: usize, escape: &mut char, out: &mut Lines| {
            let mut t = trim_newline(raw);
            if strip_left {
                t = t.trim_start_matches(is_space);
            }
            let mut directive = false;
            if let Some((name, value)) = dp
                .parse_line(t)
                .map_err(|m| Located::new(line_no, line_no, m))?
            {
                if name == "escape" {
                    if value != "`" && value != "\\" {
                        return Err(Located::new(
                            line_no,
                            line_no,
                            format!("invalid escape token '{value}' does not match ` or \\"),
                        ));
                    }
                    *escape = if value == "`" { '`' } else { '\\' };
                }
                out.directives.push(Directive {
                    name,
                    value,
                    line: line_no,
                });
                directive = true;
            }
            let kept = if is_comment(t) {
                String::new()
            } else {
                t.to_string()
            };
            Ok((kept, directive))
        };
    let comment_text = |raw: &str| {
        trim_newline(raw).trim_matches(is_space)[1..]
            .trim_matches(is_space)
            .to_string()
    };

    while idx < lines.len() {
        let mut raw = lines[idx];
        idx += 1;
        if current == 0 {
            raw = raw.strip_prefix('\u{feff}').unwrap_or(raw);
        }
        let (first, directive) = process(raw, true, current + 1, &mut escape, &mut out)?;
        current += 1;
        if is_comment(raw) && !directive {
            out.comments.push(Comment {
                line: current,
                text: comment_text(raw),
            });
        }
        let start = current;
        let (first, mut eol) = trim_continuation(&first, escape);
        if eol && first.is_empty() {
            continue;
        }
        let mut buf = first;
        let mut empty_continuation = false;
        while !eol && idx < lines.len() {
            let raw = lines[idx];
            idx += 1;
            let (t, _) = process(raw, false, current + 1, &mut escape, &mut out)?;
            current += 1;
            if is_comment(raw) {
                out.comments.push(Comment {
                    line: current,
                    text: comment_text(raw),
                });
                continue;
            }
            if t.trim_start_matches(is_space).is_empty() {
                empty_continuation = true;
                continue;
            }
            let (t, e) = trim_continuation(&t, escape);
            buf.push_str(&t);
            eol = e;
        }
        if empty_continuation {
            out.warnings.push(Warning {
                line: current,
                message: format!("Empty continuation line found in: {buf}"),
            });
        }
        let mut node = node_from_line(&buf, escape).map_err(|m| Located::new(start, current, m))?;
        if node.can_contain_heredoc() && buf.contains("<<") {
            let docs = heredocs_from_line(&buf).map_err(|e| Located::new(start, current, e.0))?;
            for mut doc in docs {
                let mut terminated = false;
                while idx < lines.len() {
                    let raw = lines[idx];
                    idx += 1;
                    current += 1;
                    let mut candidate = trim_newline(raw);
                    if doc.chomp {
                        candidate = candidate.trim_start_matches('\t');
                    }
                    if candidate == doc.name {
                        terminated = true;
                        break;
                    }
                    doc.content.push_str(raw);
                }
                if !terminated {
                    return Err(Located::new(start, current, "unterminated heredoc"));
                }
                node.heredocs.push(doc);
            }
        }
        node.start_line = start;
        node.end_line = current;
        out.nodes.push(node);
    }
    out.escape = escape;
    if out.nodes.is_empty() {
        return Err(Located::new(
            current.max(1),
            current.max(1),
            "file with no instructions",
        ));
    }
    if let Some(i) = too_long {
        return Err(Located::new(
            i + 1,
            i + 1,
            "dockerfile line greater than max allowed size of 65535",
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_like_buildkit() {
        let cases: &[(&str, &[&str])] = &[
            ("foo", &["foo"]),
            ("foo bar", &["foo", "bar"]),
            ("foo\\ bar", &["foo\\ bar"]),
            ("foo=bar", &["foo=bar"]),
            ("foo bar 'abc xyz'", &["foo", "bar", "'abc xyz'"]),
            ("foo bar \"abc xyz\"", &["foo", "bar", "\"abc xyz\""]),
            ("àöû", &["àöû"]),
            ("föo bàr \"âbc xÿz\"", &["föo", "bàr", "\"âbc xÿz\""]),
            ("a=\"x \\\" y\" b=''", &["a=\"x \\\" y\"", "b=''"]),
            ("'it''s'", &["'it''s'"]),
            ("trailing\\", &["trailing"]),
        ];
        for (input, want) in cases {
            assert_eq!(parse_words(input, '\\'), *want, "{input}");
        }
    }

    #[test]
    fn flags_like_buildkit() {
        let cases: &[(&str, &str, &[&str])] = &[
            ("--from=a b c", "b c", &["--from=a"]),
            ("--a --b=\"x y\" rest", "rest", &["--a", "--b=x y"]),
            ("-- --notflag x", " --notflag x", &[]),
            ("--x -- y", " y", &["--x"]),
            ("--x", "", &["--x"]),
            ("-x y", "-x y", &[]),
            ("--a=\\\"q", "", &["--a=\"q"]),
            ("--chown=jos\u{e9} a b", "a b", &["--chown=jos\u{c3}\u{a9}"]),
            ("--x=''  y", "y", &["--x="]),
        ];
        for (input, rest, flags) in cases {
            let (r, f) = extract_flags(input);
            assert_eq!(r, *rest, "{input}");
            assert_eq!(f, *flags, "{input}");
        }
    }

    #[test]
    fn go_regexp_split() {
        assert_eq!(split_whitespace_go("a b\t\tc", -1), ["a", "b", "c"]);
        assert_eq!(split_whitespace_go("a  b c", 2), ["a", "b c"]);
        assert_eq!(split_whitespace_go(" a ", -1), ["", "a", ""]);
        assert_eq!(split_whitespace_go("a", 2), ["a"]);
        assert_eq!(split_whitespace_go("a\u{a0}b", -1), ["a\u{a0}b"]);
    }

    #[test]
    fn continuation_rules() {
        assert_eq!(
            trim_continuation("RUN a \\", '\\'),
            ("RUN a ".into(), false)
        );
        assert_eq!(
            trim_continuation("RUN a \\  \t", '\\'),
            ("RUN a ".into(), false)
        );
        assert_eq!(trim_continuation("\\", '\\'), ("".into(), false));
        assert_eq!(
            trim_continuation("RUN a \\\\", '\\'),
            ("RUN a \\\\".into(), true)
        );
        assert_eq!(trim_continuation("RUN a `", '`'), ("RUN a ".into(), false));
        assert_eq!(
            trim_continuation("RUN a \\", '`'),
            ("RUN a \\".into(), true)
        );
    }
}
