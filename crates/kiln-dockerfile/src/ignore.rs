//! `.dockerignore`: reading (moby/patternmatcher v0.6.0 `ignorefile.ReadAll`),
//! matching (`patternmatcher`) and the context walker's decisions
//! (tonistiigi/fsutil `filterFS.Walk`), as BuildKit v0.19.0 uses them.
//!
//! Paths are relative to the context root, `/`-separated, without a leading
//! `/` or `./` (e.g. `src/main.rs`).

use crate::gocompat::filepath;
use crate::gocompat::regexp::translate;
use crate::gocompat::unicode::is_space;
use regex::Regex;
use std::path::{Path, PathBuf};

/// A `.dockerignore` BuildKit would refuse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct IgnoreError(pub String);

#[derive(Debug, Clone)]
enum MatchKind {
    Exact,
    Prefix,
    Suffix,
    /// An anchored expression, and the literal text every match starts with: checking
    /// that first spares the regex engine nearly every path (2,000 patterns over 50,000
    /// files took 25 s).
    Regex {
        re: Regex,
        prefix: String,
    },
}

#[derive(Debug, Clone)]
struct Pattern {
    cleaned: String,
    exclusion: bool,
    kind: MatchKind,
}

impl Pattern {
    fn matches(&self, path: &str) -> bool {
        match &self.kind {
            MatchKind::Exact => path == self.cleaned,
            MatchKind::Prefix => path.starts_with(&self.cleaned[..self.cleaned.len() - 2]),
            MatchKind::Suffix => {
                let suffix = &self.cleaned[2..];
                path.ends_with(suffix) || suffix.strip_prefix('/').is_some_and(|s| path == s)
            }
            MatchKind::Regex { re, prefix } => path.starts_with(prefix) && re.is_match(path),
        }
    }

    /// fsutil's `patternWithoutTrailingGlob`.
    fn without_trailing_glob(&self) -> &str {
        let p = self.cleaned.strip_suffix("/**").unwrap_or(&self.cleaned);
        p.strip_suffix("/*").unwrap_or(p)
    }
}

/// patternmatcher's `compile`: the pattern as a match kind, with the regular
/// expression (Go syntax) translated for the regex crate.
fn compile(pattern: &str) -> Result<MatchKind, IgnoreError> {
    #[derive(PartialEq)]
    enum T {
        Exact,
        Prefix,
        Suffix,
        Regexp,
    }
    let mut re = String::from("^");
    let mut t = T::Exact;
    let chars: Vec<char> = pattern.chars().collect();
    let mut pos = usize::from(chars.first() == Some(&'\u{feff}'));
    let mut i = 0;
    while pos < chars.len() {
        let ch = chars[pos];
        pos += 1;
        match ch {
            '*' if chars.get(pos) == Some(&'*') => {
                pos += 1;
                if chars.get(pos) == Some(&'/') {
                    pos += 1;
                }
                if pos >= chars.len() {
                    if t == T::Exact {
                        t = T::Prefix;
                    } else {
                        re.push_str(".*");
                        t = T::Regexp;
                    }
                } else {
                    re.push_str("(.*/)?");
                    t = T::Regexp;
                }
                if i == 0 {
                    t = T::Suffix;
                }
            }
            '*' => {
                re.push_str("[^/]*");
                t = T::Regexp;
            }
            '?' => {
                re.push_str("[^/]");
                t = T::Regexp;
            }
            '.' | '+' | '(' | ')' | '|' | '{' | '}' | '$' => {
                re.push('\\');
                re.push(ch);
            }
            '\\' => {
                if pos < chars.len() {
                    re.push('\\');
                    re.push(chars[pos]);
                    pos += 1;
                    t = T::Regexp;
                } else {
                    re.push('\\');
                }
            }
            '[' | ']' => {
                re.push(ch);
                t = T::Regexp;
            }
            c => re.push(c),
        }
        i += 1;
    }
    Ok(match t {
        T::Exact => MatchKind::Exact,
        T::Prefix => MatchKind::Prefix,
        T::Suffix => MatchKind::Suffix,
        T::Regexp => {
            re.push('$');
            let rust = translate(&re)
                .map_err(|e| IgnoreError(format!("syntax error in pattern {pattern:?}: {e}")))?;
            let re = Regex::new(&rust)
                .map_err(|e| IgnoreError(format!("syntax error in pattern {pattern:?}: {e}")))?;
            // The characters before the first one the loop above turns into regex syntax.
            let start = usize::from(chars.first() == Some(&'\u{feff}'));
            let prefix = chars[start..]
                .iter()
                .take_while(|c| !matches!(c, '*' | '?' | '[' | ']' | '\\'))
                .collect();
            MatchKind::Regex { re, prefix }
        }
    })
}

/// Per-pattern match results of a directory, handed to its children
/// (patternmatcher's `MatchInfo`). The default means "no parent information".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MatchInfo {
    parent_matched: Vec<bool>,
}

/// What the context walker does with an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WalkDecision {
    /// Send it.
    Include,
    /// Do not send it; for a directory, still walk inside (it is sent
    /// after all, with its own metadata, if something inside is included).
    Exclude,
    /// Do not send the directory nor anything inside.
    SkipDir,
}

/// Compiled `.dockerignore` patterns.
#[derive(Debug, Clone)]
pub struct IgnoreMatcher {
    patterns: Vec<Pattern>,
    exclusions: bool,
    only_prefix_exceptions: bool,
}

/// `ignorefile.ReadAll`: the patterns of a `.dockerignore` file, in order,
/// exceptions prefixed with `!`.
pub fn read_patterns(text: &str) -> Result<Vec<String>, IgnoreError> {
    let mut out = Vec::new();
    for (n, raw) in text.split_inclusive('\n').enumerate() {
        let mut line = raw.strip_suffix('\n').unwrap_or(raw);
        if line.len() >= 64 * 1024 {
            return Err(IgnoreError("bufio.Scanner: token too long".into()));
        }
        line = line.strip_suffix('\r').unwrap_or(line);
        if n == 0 {
            line = line.strip_prefix('\u{feff}').unwrap_or(line);
        }
        if line.starts_with('#') {
            continue;
        }
        let mut pattern = line.trim_matches(is_space).to_string();
        if pattern.is_empty() {
            continue;
        }
        let invert = pattern.starts_with('!');
        if invert {
            pattern = pattern[1..].trim_matches(is_space).to_string();
        }
        if !pattern.is_empty() {
            pattern = filepath::clean(&pattern);
            if pattern.len() > 1 && pattern.starts_with('/') {
                pattern.remove(0);
            }
        }
        if invert {
            pattern.insert(0, '!');
        }
        out.push(pattern);
    }
    Ok(out)
}

impl IgnoreMatcher {
    /// Reads and compiles a `.dockerignore` file's text.
    pub fn parse(text: &str) -> Result<IgnoreMatcher, IgnoreError> {
        IgnoreMatcher::new(&read_patterns(text)?)
    }

    /// Compiles patterns as `patternmatcher.New` does (`!` marks an exception).
    pub fn new<S: AsRef<str>>(patterns: &[S]) -> Result<IgnoreMatcher, IgnoreError> {
        let mut out = Vec::new();
        let mut exclusions = false;
        for p in patterns {
            let p = p.as_ref().trim_matches(is_space);
            if p.is_empty() {
                continue;
            }
            let mut p = filepath::clean(p);
            let mut exclusion = false;
            if let Some(rest) = p.strip_prefix('!') {
                if rest.is_empty() {
                    return Err(IgnoreError("illegal exclusion pattern: \"!\"".into()));
                }
                exclusion = true;
                exclusions = true;
                p = rest.to_string();
            }
            if let Err(e) = filepath::matches(&p, ".") {
                return Err(IgnoreError(e.to_string()));
            }
            let kind = compile(&p)?;
            out.push(Pattern {
                cleaned: p,
                exclusion,
                kind,
            });
        }
        let only_prefix_exceptions = !out.iter().any(|p| {
            p.exclusion
                && p.without_trailing_glob()
                    .contains(['*', '[', ']', '?', '^', '\\'])
        });
        Ok(IgnoreMatcher {
            patterns: out,
            exclusions,
            only_prefix_exceptions,
        })
    }

    /// The compiled patterns in order, exceptions with a leading `!`.
    pub fn patterns(&self) -> Vec<String> {
        self.patterns
            .iter()
            .map(|p| {
                if p.exclusion {
                    format!("!{}", p.cleaned)
                } else {
                    p.cleaned.clone()
                }
            })
            .collect()
    }

    /// True when there are no patterns (nothing is ever excluded).
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    fn parent_dirs(path: &str) -> Vec<String> {
        let parent = filepath::dir(path);
        if parent == "." {
            return Vec::new();
        }
        let parts: Vec<&str> = parent.split('/').collect();
        (1..=parts.len()).map(|i| parts[..i].join("/")).collect()
    }

    /// patternmatcher's `MatchesOrParentMatches`: whether `path` or one of
    /// its parent directories is excluded, later patterns overriding earlier
    /// ones. BuildKit uses this for single files (and its
    /// "copy of an ignored file" lint).
    pub fn matches_or_parent_matches(&self, path: &str) -> bool {
        let parents = IgnoreMatcher::parent_dirs(path);
        let mut matched = false;
        for p in &self.patterns {
            if p.exclusion != matched {
                continue;
            }
            let m = p.matches(path) || parents.iter().any(|d| p.matches(d));
            if m {
                matched = !p.exclusion;
            }
        }
        matched
    }

    /// patternmatcher's `MatchesUsingParentResults`: the walker's test of
    /// `path`, given the result for its parent directory.
    pub fn matches_using_parent_results(
        &self,
        path: &str,
        parent: &MatchInfo,
    ) -> (bool, MatchInfo) {
        let have_parent = !parent.parent_matched.is_empty();
        let mut info = MatchInfo {
            parent_matched: vec![false; self.patterns.len()],
        };
        let mut matched = false;
        for (i, p) in self.patterns.iter().enumerate() {
            let mut m = have_parent && parent.parent_matched.get(i).copied().unwrap_or(false);
            if !m {
                if p.exclusion != matched {
                    continue;
                }
                m = p.matches(path);
                if !m && !have_parent {
                    m = IgnoreMatcher::parent_dirs(path)
                        .iter()
                        .any(|d| p.matches(d));
                }
            }
            info.parent_matched[i] = m;
            if m {
                matched = !p.exclusion;
            }
        }
        (matched, info)
    }

    /// Whether the walker, having excluded directory `dir`, still looks
    /// inside it because an exception might re-include something there
    /// (fsutil's `onlyPrefixExcludeExceptions` shortcut). Always true when
    /// an exception pattern contains a wildcard.
    pub fn may_include_inside(&self, dir: &str) -> bool {
        if !self.only_prefix_exceptions {
            return true;
        }
        if !self.exclusions {
            return false;
        }
        let dir_slash = format!("{dir}/");
        self.patterns
            .iter()
            .filter(|p| p.exclusion)
            .any(|p| format!("{}/", p.without_trailing_glob()).starts_with(&dir_slash))
    }

    /// The context walker's decision for one entry, given its parent
    /// directory's [`MatchInfo`] (use the default for top-level entries and
    /// keep each walked directory's returned info for its children).
    pub fn walk_decision(
        &self,
        path: &str,
        is_dir: bool,
        parent: &MatchInfo,
    ) -> (WalkDecision, MatchInfo) {
        if self.patterns.is_empty() {
            return (WalkDecision::Include, MatchInfo::default());
        }
        let (m, info) = self.matches_using_parent_results(path, parent);
        let decision = match (m, is_dir) {
            (false, _) => WalkDecision::Include,
            (true, true) if !self.may_include_inside(path) => WalkDecision::SkipDir,
            (true, _) => WalkDecision::Exclude,
        };
        (decision, info)
    }

    /// Whether the walker leaves `path` out, considering every ancestor
    /// directory the way the walker reaches it. An excluded directory can
    /// still be sent if something inside it is included (see [`WalkDecision::Exclude`]).
    pub fn is_excluded(&self, path: &str, is_dir: bool) -> bool {
        let parts: Vec<&str> = path
            .split('/')
            .filter(|s| !s.is_empty() && *s != ".")
            .collect();
        let mut info = MatchInfo::default();
        for k in 0..parts.len() {
            let p = parts[..=k].join("/");
            let last = k + 1 == parts.len();
            let (d, next) = self.walk_decision(&p, if last { is_dir } else { true }, &info);
            if last {
                return d != WalkDecision::Include;
            }
            if d == WalkDecision::SkipDir {
                return true;
            }
            info = next;
        }
        false
    }
}

/// The `.dockerignore` BuildKit reads: `<Dockerfile path>.dockerignore`
/// (e.g. `Dockerfile.dockerignore` next to the Dockerfile) if it exists,
/// even empty; else `.dockerignore` at the context root; else none.
pub fn find_dockerignore(dockerfile: &Path, context: &Path) -> Option<PathBuf> {
    let mut specific = dockerfile.as_os_str().to_owned();
    specific.push(".dockerignore");
    let specific = PathBuf::from(specific);
    if specific.is_file() {
        return Some(specific);
    }
    let root = context.join(".dockerignore");
    root.is_file().then_some(root)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kiln_testkit::rng::Rng;

    #[test]
    fn the_literal_prefix_never_rejects_a_match() {
        let mut rng = Rng(0x1d_0c_4e_21);
        let pattern_bits = [
            "a", "b", "/", ".", "*", "?", "**", "[ab]", "\\*", "x+", "\u{feff}",
        ];
        let path_bits = ["a", "b", "/", ".", "*", "x+", "ab", "\u{feff}"];
        let (mut regexes, mut matched) = (0, 0);
        for _ in 0..3000 {
            let pattern: String = (0..1 + rng.below(6))
                .map(|_| *rng.pick(&pattern_bits))
                .collect();
            let Ok(MatchKind::Regex { re, prefix }) = compile(&pattern) else {
                continue;
            };
            regexes += 1;
            for _ in 0..50 {
                let path: String = (0..rng.below(7)).map(|_| *rng.pick(&path_bits)).collect();
                if re.is_match(&path) {
                    matched += 1;
                    assert!(path.starts_with(&prefix), "{pattern:?} {prefix:?} {path:?}");
                }
            }
        }
        // The cases exercised something.
        assert!(regexes > 1000 && matched > 1000, "{regexes} {matched}");
    }
}
