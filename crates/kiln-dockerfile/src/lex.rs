//! Variable expansion and word splitting: a port of BuildKit v0.19.0's shell
//! lexer (`frontend/dockerfile/shell/lex.go`).
//!
//! Supports `$VAR`, `${VAR}`, `${VAR:-w}`, `${VAR-w}`, `${VAR:+w}`,
//! `${VAR+w}`, `${VAR:?w}`, `${VAR?w}`, `${VAR#p}`, `${VAR##p}`,
//! `${VAR%p}`, `${VAR%%p}`, `${VAR/p/r}`, `${VAR//p/r}`, single and double
//! quotes and the escape character, and errors exactly where BuildKit errors.
//! BuildKit quirks are kept on purpose (for instance the shared word buffer
//! that makes [`Lexer::process_words`] drop the start of a word that is
//! followed by `${...}` with a modifier).

use crate::gocompat::regexp::replace_all;
use crate::gocompat::strconv::quote;
use crate::gocompat::unicode::{is_digit, is_letter, is_space};
use regex::Regex;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// Something variables can be looked up in.
pub trait EnvLookup {
    /// The value of `key`, or `None` when it is not set (set-but-empty is `Some("")`).
    fn lookup(&self, key: &str) -> Option<&str>;
}

/// An environment built from an ordered list of `KEY=VALUE` entries, where a
/// later entry for the same key wins (BuildKit's `EnvsFromSlice`). An entry
/// without `=` sets the key to the empty string.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EnvList {
    values: BTreeMap<String, String>,
    order: Vec<String>,
}

impl EnvList {
    /// An empty environment.
    pub fn new() -> EnvList {
        EnvList::default()
    }

    /// Builds an environment from `KEY=VALUE` strings, later entries winning.
    pub fn from_list<I, S>(list: I) -> EnvList
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut env = EnvList::new();
        for entry in list {
            let entry = entry.as_ref();
            let (k, v) = entry.split_once('=').unwrap_or((entry, ""));
            env.set(k, v);
        }
        env
    }

    /// Sets `key` (replacing an earlier value, keeping its position).
    pub fn set(&mut self, key: &str, value: &str) {
        if self
            .values
            .insert(key.to_string(), value.to_string())
            .is_none()
        {
            self.order.push(key.to_string());
        }
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.values.get(key).map(String::as_str)
    }

    /// The keys in the order they were first set.
    pub fn keys(&self) -> &[String] {
        &self.order
    }

    /// The entries as `KEY=VALUE` strings, in the order keys were first set.
    pub fn to_list(&self) -> Vec<String> {
        self.order
            .iter()
            .map(|k| format!("{k}={}", self.values[k]))
            .collect()
    }
}

impl EnvLookup for EnvList {
    fn lookup(&self, key: &str) -> Option<&str> {
        self.get(key)
    }
}

impl EnvLookup for BTreeMap<String, String> {
    fn lookup(&self, key: &str) -> Option<&str> {
        self.get(key).map(String::as_str)
    }
}

/// No variables at all.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoEnv;

impl EnvLookup for NoEnv {
    fn lookup(&self, _: &str) -> Option<&str> {
        None
    }
}

/// A failed expansion. Displays like BuildKit: `failed to process "WORD": REASON` (a
/// word over 200 characters shown by its start and its length).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("failed to process {}: {reason}", shown_word(.word))]
pub struct LexError {
    /// The word that was being processed.
    pub word: String,
    /// BuildKit's message, e.g. `syntax error: bad substitution`.
    pub reason: String,
}

/// Everything one pass of the lexer produces.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Processed {
    /// The word with variables expanded and quotes/escapes processed.
    pub result: String,
    /// The same split into words (only filled by [`Lexer::process_words`]).
    pub words: Vec<String>,
    /// Variables that were looked up and found.
    pub matched: BTreeSet<String>,
    /// Variables that were looked up and not found.
    pub unmatched: BTreeSet<String>,
}

/// How many bytes variable references may copy into expanded words, in total, through one
/// lexer and the lexers derived from it (one build). BuildKit sets no limit, so 40 lines of
/// `ENV A=$A$A` ask for a terabyte; here they fail with an error instead of exhausting
/// memory. Real Dockerfiles copy kilobytes (and a RUN could not receive an environment of
/// more than a few MiB: Linux caps what `execve` passes).
pub const EXPANSION_BUDGET: usize = 64 << 20;

/// Why an expansion stopped at [`EXPANSION_BUDGET`].
fn over_budget() -> String {
    format!(
        "variable expansion would copy more than {} MiB in this build (kiln's limit; \
         is a variable expanded into itself again and again?)",
        EXPANSION_BUDGET >> 20
    )
}

/// BuildKit's shell lexer, configured with the Dockerfile's escape character.
#[derive(Debug, Clone)]
pub struct Lexer {
    escape: char,
    raw_quotes: bool,
    raw_escapes: bool,
    skip_process_quotes: bool,
    skip_unset_env: bool,
    /// Bytes left of [`EXPANSION_BUDGET`], shared with the lexer's clones.
    budget: Arc<AtomicUsize>,
}

impl Lexer {
    /// A lexer whose escape character is `escape` (`\` or `` ` ``).
    pub fn new(escape: char) -> Lexer {
        Lexer {
            escape,
            raw_quotes: false,
            raw_escapes: false,
            skip_process_quotes: false,
            skip_unset_env: false,
            budget: Arc::new(AtomicUsize::new(EXPANSION_BUDGET)),
        }
    }

    /// Takes `n` bytes from the expansion budget, or says why it cannot.
    fn spend(&self, n: usize) -> LexResult<()> {
        self.budget
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| {
                left.checked_sub(n)
            })
            .map(drop)
            .map_err(|_| over_budget())
    }

    /// Bytes left of the expansion budget.
    fn budget_left(&self) -> usize {
        self.budget.load(Ordering::Relaxed)
    }

    /// The lexer BuildKit expands heredoc bodies with: `\\` as escape, quotes left alone,
    /// spending this lexer's expansion budget.
    pub fn for_heredoc_bodies(&self) -> Lexer {
        Lexer {
            budget: Arc::clone(&self.budget),
            ..Lexer::new('\\').skip_process_quotes(true)
        }
    }

    /// The escape character.
    pub fn escape(&self) -> char {
        self.escape
    }

    /// Keep quote characters in the output (`RawQuotes`).
    pub fn raw_quotes(mut self, on: bool) -> Lexer {
        self.raw_quotes = on;
        self
    }

    /// Keep escape characters in the output (`RawEscapes`).
    pub fn raw_escapes(mut self, on: bool) -> Lexer {
        self.raw_escapes = on;
        self
    }

    /// Treat quotes as ordinary characters (`SkipProcessQuotes`); BuildKit
    /// uses this for heredoc bodies.
    pub fn skip_process_quotes(mut self, on: bool) -> Lexer {
        self.skip_process_quotes = on;
        self
    }

    /// Leave references to unset variables as written (`SkipUnsetEnv`).
    pub fn skip_unset_env(mut self, on: bool) -> Lexer {
        self.skip_unset_env = on;
        self
    }

    /// `ProcessWord`: expands `word` as one word (no splitting).
    pub fn process_word(&self, word: &str, env: &dyn EnvLookup) -> Result<String, LexError> {
        self.process_word_with_matches(word, env).map(|p| p.result)
    }

    /// `ProcessWordWithMatches`: like [`Lexer::process_word`], also telling
    /// which variables were used.
    pub fn process_word_with_matches(
        &self,
        word: &str,
        env: &dyn EnvLookup,
    ) -> Result<Processed, LexError> {
        self.run(word, env)
    }

    /// `ProcessWords`: expands `word` and splits it into words on unquoted
    /// whitespace (splitting happens after expansion).
    pub fn process_words(&self, word: &str, env: &dyn EnvLookup) -> Result<Vec<String>, LexError> {
        self.run(word, env).map(|p| p.words)
    }

    fn run(&self, word: &str, env: &dyn EnvLookup) -> Result<Processed, LexError> {
        let mut chars: Vec<char> = word.chars().collect();
        // Go's text/scanner skips a byte order mark at the very start.
        if chars.first() == Some(&'\u{feff}') {
            chars.remove(0);
        }
        let mut sw = ShellWord {
            lex: self,
            chars,
            pos: 0,
            env,
            raw_escapes: self.raw_escapes,
            words_buf: String::new(),
            matched: BTreeSet::new(),
            unmatched: BTreeSet::new(),
            depth: 0,
        };
        match sw.process_stop_on(None, self.raw_escapes) {
            Ok((result, words)) => Ok(Processed {
                result,
                words,
                matched: sw.matched,
                unmatched: sw.unmatched,
            }),
            Err(reason) => Err(LexError {
                word: word.to_string(),
                reason,
            }),
        }
    }
}

/// Word-splitting state of one `processStopOn` call. The character buffer is
/// shared by all nested calls, exactly like BuildKit's `shellWord.wordsBuffer`.
#[derive(Default)]
struct Words {
    words: Vec<String>,
    in_word: bool,
}

impl Words {
    fn add_char(&mut self, buf: &mut String, c: char) {
        if is_space(c) && self.in_word {
            if !buf.is_empty() {
                self.words.push(std::mem::take(buf));
                self.in_word = false;
            }
        } else if !is_space(c) {
            self.add_raw_char(buf, c);
        }
    }

    fn add_raw_char(&mut self, buf: &mut String, c: char) {
        buf.push(c);
        self.in_word = true;
    }

    fn add_string(&mut self, buf: &mut String, s: &str) {
        for c in s.chars() {
            self.add_char(buf, c);
        }
    }

    fn add_raw_string(&mut self, buf: &mut String, s: &str) {
        buf.push_str(s);
        self.in_word = true;
    }

    fn finish(mut self, buf: &mut String) -> Vec<String> {
        if !buf.is_empty() {
            self.words.push(std::mem::take(buf));
        }
        self.words
    }
}

struct ShellWord<'a> {
    lex: &'a Lexer,
    chars: Vec<char>,
    pos: usize,
    env: &'a dyn EnvLookup,
    raw_escapes: bool,
    words_buf: String,
    matched: BTreeSet<String>,
    unmatched: BTreeSet<String>,
    /// Substitutions (`${a:-${b}}`) being processed inside each other.
    depth: usize,
}

/// How deep substitutions may nest. BuildKit (Go, with growable stacks) sets no limit;
/// here each level takes stack, and an untrusted Dockerfile must not exhaust it. Real
/// Dockerfiles nest a few levels.
pub const MAX_SUBSTITUTION_DEPTH: usize = 100;

type LexResult<T> = Result<T, String>;

/// The word as an error shows it: quoted, and cut after 200 characters.
fn shown_word(word: &str) -> String {
    const SHOWN: usize = 200;
    match word.char_indices().nth(SHOWN) {
        None => quote(word),
        Some((cut, _)) => format!(
            "{}… ({} characters)",
            quote(&word[..cut]),
            word.chars().count()
        ),
    }
}

/// How Go prints a rune that may be EOF (`string(rune(-1))` is U+FFFD).
fn rune_str(c: Option<char>) -> String {
    c.unwrap_or('\u{fffd}').to_string()
}

impl ShellWord<'_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += 1;
        Some(c)
    }

    /// The value of `name`, charged to the expansion budget.
    fn get_env(&mut self, name: &str) -> LexResult<Option<String>> {
        match self.env.lookup(name) {
            Some(v) => {
                self.lex.spend(v.len())?;
                self.matched.insert(name.to_string());
                Ok(Some(v.to_string()))
            }
            None => {
                self.unmatched.insert(name.to_string());
                Ok(None)
            }
        }
    }

    fn process_stop_on(
        &mut self,
        stop: Option<char>,
        raw_escapes: bool,
    ) -> LexResult<(String, Vec<String>)> {
        if self.depth >= MAX_SUBSTITUTION_DEPTH {
            return Err(format!(
                "substitutions nested more than {MAX_SUBSTITUTION_DEPTH} deep"
            ));
        }
        let saved = self.raw_escapes;
        self.raw_escapes = raw_escapes;
        self.depth += 1;
        let r = self.stop_on(stop);
        self.depth -= 1;
        self.raw_escapes = saved;
        r
    }

    fn stop_on(&mut self, stop: Option<char>) -> LexResult<(String, Vec<String>)> {
        let mut result = String::new();
        self.words_buf.clear();
        let mut words = Words::default();
        while let Some(ch) = self.peek() {
            if stop == Some(ch) {
                self.next();
                return Ok((result, words.finish(&mut self.words_buf)));
            }
            let quotes = !self.lex.skip_process_quotes;
            if ch == '$' {
                let tmp = self.dollar()?;
                result.push_str(&tmp);
                words.add_string(&mut self.words_buf, &tmp);
            } else if quotes && (ch == '\'' || ch == '"') {
                let tmp = if ch == '\'' {
                    self.single_quote()?
                } else {
                    self.double_quote()?
                };
                result.push_str(&tmp);
                words.add_raw_string(&mut self.words_buf, &tmp);
            } else {
                self.next();
                if ch == self.lex.escape {
                    if self.raw_escapes {
                        words.add_raw_char(&mut self.words_buf, ch);
                        result.push(ch);
                    }
                    // The escape character escapes anything, except at the end.
                    let Some(c) = self.next() else {
                        break;
                    };
                    words.add_raw_char(&mut self.words_buf, c);
                    result.push(c);
                } else {
                    words.add_char(&mut self.words_buf, ch);
                    result.push(ch);
                }
            }
        }
        if let Some(s) = stop {
            return Err(format!(
                "unexpected end of statement while looking for matching {s}"
            ));
        }
        Ok((result, words.finish(&mut self.words_buf)))
    }

    fn single_quote(&mut self) -> LexResult<String> {
        let mut out = String::new();
        let open = self.next();
        if self.lex.raw_quotes {
            out.extend(open);
        }
        loop {
            match self.next() {
                None => {
                    return Err(
                        "unexpected end of statement while looking for matching single-quote"
                            .into(),
                    )
                }
                Some('\'') => {
                    if self.lex.raw_quotes {
                        out.push('\'');
                    }
                    return Ok(out);
                }
                Some(c) => out.push(c),
            }
        }
    }

    fn double_quote(&mut self) -> LexResult<String> {
        let mut out = String::new();
        let open = self.next();
        if self.lex.raw_quotes {
            out.extend(open);
        }
        loop {
            match self.peek() {
                None => {
                    return Err(
                        "unexpected end of statement while looking for matching double-quote"
                            .into(),
                    )
                }
                Some('"') => {
                    self.next();
                    if self.lex.raw_quotes {
                        out.push('"');
                    }
                    return Ok(out);
                }
                Some('$') => {
                    let v = self.dollar()?;
                    out.push_str(&v);
                }
                Some(_) => {
                    let mut ch = self.next().unwrap_or_default();
                    if ch == self.lex.escape {
                        if self.raw_escapes {
                            out.push(ch);
                        }
                        match self.peek() {
                            // A trailing escape is dropped; the loop then reports the open quote.
                            None => continue,
                            Some(c) if c == '"' || c == '$' || c == self.lex.escape => {
                                ch = c;
                                self.next();
                            }
                            Some(_) => {}
                        }
                    }
                    out.push(ch);
                }
            }
        }
    }

    fn name(&mut self) -> String {
        let mut name = String::new();
        while let Some(ch) = self.peek() {
            if name.is_empty() && is_digit(ch) {
                while let Some(d) = self.peek().filter(|&d| is_digit(d)) {
                    self.next();
                    name.push(d);
                }
                return name;
            }
            if name.is_empty() && matches!(ch, '@' | '*' | '#' | '?' | '-' | '$' | '!' | '0') {
                self.next();
                return ch.to_string();
            }
            if !is_letter(ch) && !is_digit(ch) && ch != '_' {
                break;
            }
            self.next();
            name.push(ch);
        }
        name
    }

    fn dollar(&mut self) -> LexResult<String> {
        self.next(); // '$'
        if self.peek() != Some('{') {
            let name = self.name();
            if name.is_empty() {
                return Ok("$".into());
            }
            return Ok(match self.get_env(&name)? {
                Some(v) => v,
                None if self.lex.skip_unset_env => format!("${name}"),
                None => String::new(),
            });
        }
        self.next(); // '{'
        match self.peek() {
            None => return Err("syntax error: missing '}'".into()),
            Some('{' | '}' | ':') => return Err("syntax error: bad substitution".into()),
            Some(_) => {}
        }
        let name = self.name();
        let mut ch = self.next();
        let mut chs = rune_str(ch);
        match ch {
            Some('}') => {
                let v = self.get_env(&name)?;
                if v.is_none() && self.lex.skip_unset_env {
                    return Ok(format!("${{{name}}}"));
                }
                Ok(v.unwrap_or_default())
            }
            Some(':' | '+' | '-' | '?' | '#' | '%') => {
                let null_is_unset = ch == Some(':');
                if null_is_unset {
                    ch = self.next();
                    chs.push_str(&rune_str(ch));
                }
                let raw = matches!(ch, Some('#' | '%'));
                if null_is_unset && raw {
                    return Err(format!("unsupported modifier ({chs}) in substitution"));
                }
                let word = match self.process_stop_on(Some('}'), raw) {
                    Ok((w, _)) => w,
                    Err(e) if self.peek().is_none() => {
                        let _ = e;
                        return Err("syntax error: missing '}'".into());
                    }
                    Err(e) => return Err(e),
                };
                let value = self.get_env(&name)?;
                if value.is_none() && self.lex.skip_unset_env {
                    return Ok(format!("${{{name}{chs}{word}}}"));
                }
                let unset_or_null = match &value {
                    None => true,
                    Some(v) => null_is_unset && v.is_empty(),
                };
                match ch {
                    Some('-') => Ok(if unset_or_null {
                        word
                    } else {
                        value.unwrap_or_default()
                    }),
                    Some('+') => Ok(if unset_or_null { String::new() } else { word }),
                    Some('?') => match value {
                        None => Err(format!(
                            "{name}: {}",
                            if word.is_empty() {
                                "is not allowed to be unset"
                            } else {
                                &word
                            }
                        )),
                        Some(v) if null_is_unset && v.is_empty() => Err(format!(
                            "{name}: {}",
                            if word.is_empty() {
                                "is not allowed to be empty"
                            } else {
                                &word
                            }
                        )),
                        Some(v) => Ok(v),
                    },
                    Some(c @ ('%' | '#')) => {
                        let (greedy, pattern) = match word.strip_prefix(c) {
                            Some(p) => (true, p.to_string()),
                            None => (false, word),
                        };
                        let value = value.unwrap_or_default();
                        if c == '%' {
                            trim_suffix(&pattern, &value, greedy)
                        } else {
                            trim_prefix(&pattern, &value, greedy)
                        }
                    }
                    _ => Err(format!("unsupported modifier ({chs}) in substitution")),
                }
            }
            Some('/') => {
                let replace_all_matches = self.peek() == Some('/');
                if replace_all_matches {
                    self.next();
                }
                let pattern = match self.process_stop_on(Some('/'), true) {
                    Ok((p, _)) => p,
                    Err(_) if self.peek().is_none() => {
                        return Err("syntax error: missing '/' in ${}".into())
                    }
                    Err(e) => return Err(e),
                };
                let replacement = match self.process_stop_on(Some('}'), true) {
                    Ok((r, _)) => r,
                    Err(_) if self.peek().is_none() => {
                        return Err("syntax error: missing '}'".into())
                    }
                    Err(e) => return Err(e),
                };
                let value = self.get_env(&name)?;
                if value.is_none() && self.lex.skip_unset_env {
                    return Ok(format!("${{{name}/{pattern}/{replacement}}}"));
                }
                let value = value.unwrap_or_default();
                let re = shell_pattern_regex(&pattern, true, false)
                    .map_err(|e| format!("invalid pattern ({pattern}) in substitution: {e}"))?;
                if replace_all_matches {
                    // Each match can copy the replacement (and `$0` the match) again.
                    let out = replace_all(&re, &value, &replacement, self.lex.budget_left());
                    let out = out.ok_or_else(over_budget)?;
                    self.lex.spend(out.len())?;
                    Ok(out)
                } else {
                    Ok(match re.find(&value) {
                        Some(m) => format!(
                            "{}{}{}",
                            &value[..m.start()],
                            replacement,
                            &value[m.end()..]
                        ),
                        None => value,
                    })
                }
            }
            _ => Err(format!("unsupported modifier ({chs}) in substitution")),
        }
    }
}

/// BuildKit's `convertShellPatternToRegex`: `*` is any string (shortest
/// unless `greedy`), `?` one character, `\*`, `\?`, `\\` literal, and `\}`,
/// `\/` drop the backslash. No bracket expressions.
fn shell_pattern_regex(pattern: &str, greedy: bool, anchored: bool) -> Result<Regex, String> {
    let mut chars = pattern.chars().peekable();
    if chars.peek() == Some(&'\u{feff}') {
        chars.next();
    }
    let mut out = String::new();
    if anchored {
        out.push('^');
    }
    let star = if greedy { "(?:.*)" } else { "(?:.*?)" };
    while let Some(tok) = chars.next() {
        match tok {
            '*' => out.push_str(star),
            '?' => out.push('.'),
            '\\' => {
                if matches!(chars.peek(), Some('}' | '/')) {
                    continue;
                }
                let t = chars.next();
                match t {
                    Some(c @ ('*' | '?' | '\\')) => out.push_str(&regex::escape(&c.to_string())),
                    other => return Err(format!("invalid escape '\\{}'", rune_str(other))),
                }
            }
            c => out.push_str(&regex::escape(&c.to_string())),
        }
    }
    Regex::new(&out).map_err(|e| e.to_string())
}

fn trim_prefix(pattern: &str, value: &str, greedy: bool) -> LexResult<String> {
    let re = shell_pattern_regex(pattern, greedy, true)
        .map_err(|e| format!("invalid pattern ({pattern}) in substitution: {e}"))?;
    Ok(match re.find(value) {
        Some(m) => value[m.end()..].to_string(),
        None => value.to_string(),
    })
}

/// Reverses a pattern keeping `\x` escapes in front of their character.
fn reverse_pattern(pattern: &str) -> String {
    let p: Vec<char> = pattern.chars().collect();
    let last = p.len().wrapping_sub(1);
    let mut out = vec!['\0'; p.len()];
    let mut i = 0;
    while i < p.len() {
        let out_idx = last - i;
        if p[i] == '\\' && i != last {
            out[out_idx - 1] = '\\';
            out[out_idx] = p[i + 1];
            i += 2;
        } else {
            out[out_idx] = p[i];
            i += 1;
        }
    }
    out.into_iter().collect()
}

fn trim_suffix(pattern: &str, value: &str, greedy: bool) -> LexResult<String> {
    // Regular expressions cannot find the shortest rightmost match, so both
    // sides are reversed into a leftmost search.
    let rev_value: String = value.chars().rev().collect();
    let trimmed = trim_prefix(&reverse_pattern(pattern), &rev_value, greedy)?;
    Ok(trimmed.chars().rev().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups_spend_one_budget_shared_by_derived_lexers() {
        let mib = "m".repeat(1 << 20);
        let env = EnvList::from_list([format!("A={mib}"), "B=b".to_string()]);
        let lex = Lexer::new('\\');
        let body = lex.for_heredoc_bodies();
        // 63 MiB through the lexer, 1 MiB through the derived one: exactly the budget.
        for _ in 0..63 {
            assert_eq!(lex.process_word("$A", &env).map(|w| w.len()), Ok(1 << 20));
        }
        assert_eq!(
            body.process_word("${A}", &env).map(|w| w.len()),
            Ok(1 << 20)
        );
        // Unset variables and words without variables cost nothing; one more byte is refused.
        assert_eq!(
            lex.process_word("plain $UNSET", &env).as_deref(),
            Ok("plain ")
        );
        let err = lex.process_word("x$B", &env).unwrap_err();
        assert_eq!(err.word, "x$B");
        assert!(err.reason.contains("more than 64 MiB"), "{}", err.reason);
        assert!(body.process_word("$B", &env).is_err());
        // A new lexer (a new build) has its own budget.
        assert_eq!(
            Lexer::new('\\').process_word("$B", &env).as_deref(),
            Ok("b")
        );
    }

    #[test]
    fn replace_all_is_charged_for_what_it_copies() {
        let env = EnvList::from_list(["A=".to_string() + &"a".repeat(1 << 13)]);
        let lex = Lexer::new('\\');
        // 8 KiB matches, each replaced by the 8 KiB value: 64 MiB, plus the two lookups.
        let err = lex.process_word("${A//?/$A}", &env).unwrap_err();
        assert!(err.reason.contains("more than 64 MiB"), "{}", err.reason);
        // Go's template `$0` copies each match (the replacement keeps its escapes, as in
        // BuildKit); within the budget it works as in Go.
        let lex = Lexer::new('\\');
        let env = EnvList::from_list(["A=ab"]);
        let out = lex.process_word("${A//?/\\$0\\$0}", &env);
        assert_eq!(out.as_deref(), Ok("\\a\\a\\b\\b"));
    }

    #[test]
    fn reverse_patterns() {
        assert_eq!(reverse_pattern("a\\*c"), "c\\*a");
        assert_eq!(reverse_pattern("\\\\\\ab"), "b\\a\\\\");
        assert_eq!(reverse_pattern("ab\\"), "\\ba");
        assert_eq!(reverse_pattern("👽\\🚀🖖"), "🖖\\🚀👽");
        assert_eq!(reverse_pattern("\\\\b"), "b\\\\");
        assert_eq!(reverse_pattern(""), "");
    }

    #[test]
    fn shell_patterns() {
        assert!(shell_pattern_regex("\\", true, true).is_err());
        assert!(shell_pattern_regex("\\x", true, true).is_err());
        assert!(shell_pattern_regex("\\\\\\", true, true).is_err());
        assert_eq!(
            shell_pattern_regex("\\x", true, true).unwrap_err(),
            "invalid escape '\\x'"
        );
        let re = shell_pattern_regex("(()[]{\\}^$.\\*\\?|\\\\", true, true).unwrap();
        assert!(re.is_match("(()[]{}^$.*?|\\"));
    }
}
