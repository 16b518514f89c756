//! The matchers behind the rules. Each module checks one family of problems
//! and reports `(RuleId, message)` pairs for one instruction; the engine
//! turns them into findings.

pub(crate) mod cleanup;
pub(crate) mod entropy;
pub(crate) mod images;
pub(crate) mod packages;
pub(crate) mod sources;
pub(crate) mod toolchains;
pub(crate) mod vcs;

use crate::context::BuildContext;
use crate::paths::{mount_covers, removal_covers};
use crate::rules::RuleId;
use crate::shell::{Script, SimpleCommand, Word};
use kiln_dockerfile::{EnvLookup, Mount};
use std::collections::BTreeMap;

/// Problems found in one instruction.
#[derive(Debug, Default)]
pub(crate) struct Problems(pub Vec<(RuleId, String)>);

impl Problems {
    pub(crate) fn add(&mut self, rule: RuleId, message: impl Into<String>) {
        self.0.push((rule, message.into()));
    }
}

/// Variables a RUN can see: the stage's ENV and ARG values, and plain
/// assignments made earlier in the same script.
pub(crate) struct Vars<'a> {
    stage: &'a dyn EnvLookup,
    /// `None` marks a variable assigned a value only known at run time.
    local: BTreeMap<String, Option<String>>,
}

impl<'a> Vars<'a> {
    pub(crate) fn new(stage: &'a dyn EnvLookup, script: &Script) -> Vars<'a> {
        let mut local = BTreeMap::new();
        for a in script.commands.iter().flat_map(assignments_of) {
            local.insert(a.0, (!a.1.dynamic).then_some(a.1.text));
        }
        Vars { stage, local }
    }

    /// A variable's value, when known.
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        match self.local.get(name) {
            Some(v) => v.as_deref(),
            None => self.stage.lookup(name),
        }
    }

    /// Whether the variable is set at all (known value or not).
    pub(crate) fn is_set(&self, name: &str) -> bool {
        self.local.contains_key(name) || self.stage.lookup(name).is_some()
    }

    /// The word with `$NAME` and `${NAME}` replaced, or `None` when it holds
    /// anything else that is only known at run time.
    pub(crate) fn resolve(&self, w: &Word) -> Option<String> {
        if !w.dynamic {
            return Some(w.text.clone());
        }
        let t = &w.text;
        let mut out = String::new();
        let mut rest = t.as_str();
        while let Some(i) = rest.find('$') {
            out.push_str(&rest[..i]);
            let after = &rest[i + 1..];
            let (name, tail) = if let Some(b) = after.strip_prefix('{') {
                let end = b.find('}')?;
                (&b[..end], &b[end + 1..])
            } else {
                let end = after
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or(after.len());
                (&after[..end], &after[end..])
            };
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return None;
            }
            out.push_str(self.get(name)?);
            rest = tail;
        }
        out.push_str(rest);
        Some(out)
    }

    /// The word's possible values split into fields, `None` when unknown.
    pub(crate) fn fields(&self, w: &Word) -> Option<Vec<String>> {
        if !w.dynamic {
            return Some(vec![w.text.clone()]);
        }
        self.resolve(w)
            .map(|v| v.split_whitespace().map(str::to_string).collect())
    }
}

/// Assignments a command makes: `NAME=v cmd`, and `export/local/declare NAME=v`.
pub(crate) fn assignments_of(cmd: &SimpleCommand) -> Vec<(String, Word)> {
    let mut v: Vec<(String, Word)> = cmd
        .assignments
        .iter()
        .map(|a| (a.name.clone(), a.value.clone()))
        .collect();
    if matches!(
        cmd.name(),
        "export" | "local" | "declare" | "readonly" | "typeset"
    ) {
        for w in cmd.args() {
            if let Some((k, val)) = w.text.split_once('=') {
                if !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                    v.push((
                        k.to_string(),
                        Word {
                            text: val.to_string(),
                            dynamic: w.dynamic,
                        },
                    ));
                }
            }
        }
    }
    v
}

/// Everything a RUN check needs.
pub(crate) struct RunCtx<'a> {
    /// The commands.
    pub script: &'a Script,
    /// The RUN's text with its heredoc bodies, for plain mentions.
    pub text: &'a str,
    /// The `--mount`s.
    pub mounts: &'a [Mount],
    /// Variables in scope.
    pub vars: &'a Vars<'a>,
    /// SOURCE_DATE_EPOCH is in the RUN's environment.
    pub sde: bool,
    /// apt is pointed at a dated snapshot mirror.
    pub apt_snapshot: bool,
    /// The build context, when known.
    pub context: Option<&'a BuildContext>,
}

impl RunCtx<'_> {
    /// Whether a mount hides writes to `path`.
    pub(crate) fn mounted(&self, path: &str) -> bool {
        self.mounts
            .iter()
            .any(|m| m.target.as_deref().is_some_and(|t| mount_covers(t, path)))
    }

    /// Whether a command at index > `after` (or any, for `None`) removes `path`.
    pub(crate) fn removed_after(&self, path: &str, after: Option<usize>) -> bool {
        self.script
            .commands
            .iter()
            .enumerate()
            .filter(|(i, _)| after.is_none_or(|a| *i > a))
            .any(|(_, c)| {
                removal_targets(c)
                    .iter()
                    .filter_map(|w| self.vars.resolve(w))
                    .any(|p| removal_covers(&p, path))
            })
    }

    /// `path` is gone from the layer: mounted over, or removed after command `after`.
    pub(crate) fn cleaned(&self, path: &str, after: Option<usize>) -> bool {
        self.mounted(path) || self.removed_after(path, after)
    }
}

/// The paths a command deletes: `rm` operands, and the start paths of a
/// `find ... -delete` / `find ... -exec rm`.
fn removal_targets(cmd: &SimpleCommand) -> Vec<&Word> {
    match cmd.name() {
        "rm" => {
            let mut out = Vec::new();
            let mut opts = true;
            for w in cmd.args() {
                if opts && w.text == "--" {
                    opts = false;
                } else if !(opts && w.text.starts_with('-')) {
                    out.push(w);
                }
            }
            out
        }
        "find" => {
            let deletes = cmd
                .args()
                .iter()
                .any(|w| w.text == "-delete" || w.text == "rm");
            if !deletes {
                return Vec::new();
            }
            cmd.args()
                .iter()
                .take_while(|w| !w.text.starts_with('-') && w.text != "(" && w.text != "!")
                .collect()
        }
        _ => Vec::new(),
    }
}

/// The operands of a command line: arguments that are not options, where
/// the options in `with_value` take the following word as their value.
pub(crate) fn operands<'w>(args: &'w [Word], with_value: &[&str]) -> Vec<&'w Word> {
    let mut out = Vec::new();
    let mut i = 0;
    let mut opts = true;
    while i < args.len() {
        let t = args[i].text.as_str();
        if opts && t == "--" {
            opts = false;
        } else if opts && t.starts_with('-') && t != "-" {
            if with_value.contains(&t) {
                i += 1;
            }
        } else {
            out.push(&args[i]);
        }
        i += 1;
    }
    out
}

/// The value of option `names` (`--opt value`, `--opt=value`, `-ovalue` for
/// one-letter options), first occurrence.
pub(crate) fn option_value(args: &[Word], names: &[&str]) -> Option<String> {
    let mut it = args.iter();
    while let Some(w) = it.next() {
        for n in names {
            if w.text == *n {
                return it.next().map(|v| v.text.clone());
            }
            if let Some(v) = w.text.strip_prefix(n) {
                if let Some(v) = v.strip_prefix('=') {
                    return Some(v.to_string());
                }
                if n.len() == 2 && !n.starts_with("--") && !v.is_empty() {
                    return Some(v.to_string());
                }
            }
        }
    }
    None
}

/// A full git object name (SHA-1 or SHA-256).
pub(crate) fn is_commit(s: &str) -> bool {
    (s.len() == 40 || s.len() == 64) && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Runs every RUN check.
pub(crate) fn check_run(ctx: &RunCtx, out: &mut Problems) {
    packages::check(ctx, out);
    cleanup::check(ctx, out);
    entropy::check(ctx, out);
    sources::check_run(ctx, out);
    toolchains::check(ctx, out);
}

/// Joins names for a message: `a, b and c`.
pub(crate) fn list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

/// Keeps the first occurrence of every item.
pub(crate) fn dedup(items: &mut Vec<String>) {
    let mut seen = std::collections::BTreeSet::new();
    items.retain(|i| seen.insert(i.clone()));
}
