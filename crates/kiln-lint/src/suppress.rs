//! Inline suppression: `# kiln:ignore=KL002,clock` silences those rules
//! (ids or slugs, or `all`) for one instruction.
//!
//! The comment may stand on the lines right above the instruction (a block
//! of comment lines with no blank line in between), on a comment line
//! inside a multi-line instruction, or, for a RUN, at the end of its shell
//! text (`RUN date > /x # kiln:ignore=KL009`), which the shell ignores.

use crate::rules::RuleId;
use kiln_dockerfile::Comment;
use std::collections::{BTreeMap, BTreeSet};

const DIRECTIVE: &str = "kiln:ignore=";

/// The rules silenced for one instruction.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Silenced {
    all: bool,
    rules: BTreeSet<RuleId>,
}

impl Silenced {
    /// Whether `rule` is silenced.
    pub fn covers(&self, rule: RuleId) -> bool {
        self.all || self.rules.contains(&rule)
    }

    fn add_comment(&mut self, text: &str) {
        let mut rest = text;
        while let Some(i) = rest.find(DIRECTIVE) {
            let after = &rest[i + DIRECTIVE.len()..];
            let end = after.find(char::is_whitespace).unwrap_or(after.len());
            for name in after[..end].split(',').filter(|n| !n.is_empty()) {
                if name.eq_ignore_ascii_case("all") {
                    self.all = true;
                } else if let Some(r) = RuleId::find(name) {
                    self.rules.insert(r);
                }
            }
            rest = &after[end..];
        }
    }
}

/// The comment lines of a Dockerfile, by line.
#[derive(Debug, Clone, Default)]
pub struct Suppressions {
    comments: BTreeMap<usize, String>,
}

impl Suppressions {
    /// Indexes the Dockerfile's comment lines.
    pub fn new(comments: &[Comment]) -> Suppressions {
        Suppressions {
            comments: comments.iter().map(|c| (c.line, c.text.clone())).collect(),
        }
    }

    /// What is silenced for the instruction on lines `line..=end_line`,
    /// given the comments found inside its shell text.
    pub fn for_instruction(&self, line: usize, end_line: usize, inner: &[String]) -> Silenced {
        let mut s = Silenced::default();
        let mut above = line;
        while above > 1 {
            above -= 1;
            match self.comments.get(&above) {
                Some(text) => s.add_comment(text),
                None => break,
            }
        }
        for (_, text) in self.comments.range(line..=end_line) {
            s.add_comment(text);
        }
        for text in inner {
            s.add_comment(text);
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directives() {
        let comments = [
            Comment {
                line: 1,
                text: "kiln:ignore=KL001".into(),
            },
            Comment {
                line: 3,
                text: "unrelated".into(),
            },
            Comment {
                line: 4,
                text: "why: test. kiln:ignore=clock,KL011 trailing words".into(),
            },
        ];
        let s = Suppressions::new(&comments);
        let at5 = s.for_instruction(5, 5, &[]);
        assert!(at5.covers(RuleId::Clock));
        assert!(at5.covers(RuleId::Randomness));
        assert!(!at5.covers(RuleId::FloatingBaseImage));
        // Line 2 is not a comment: line 1 does not reach line 5... but it reaches line 2.
        assert!(s
            .for_instruction(2, 2, &[])
            .covers(RuleId::FloatingBaseImage));
        assert!(!s.for_instruction(6, 6, &[]).covers(RuleId::Clock));
        assert!(s
            .for_instruction(9, 9, &["kiln:ignore=all".into()])
            .covers(RuleId::AptUnpinned));
    }
}
