//! Remote sources fetched by something that moves: ADD of a URL without a
//! checksum (KL013), git by branch or tag (KL014).

use super::{is_commit, Problems, RunCtx};
use crate::rules::RuleId;
use crate::shell::SimpleCommand;

/// BuildKit treats these ADD sources as git repositories.
fn is_git_url(src: &str) -> bool {
    if src.starts_with("git@") || src.starts_with("git://") || src.starts_with("ssh://") {
        return true;
    }
    let (http, rest) = match src.split_once("://") {
        Some((s, rest)) => (s == "http" || s == "https", rest),
        None => (false, ""),
    };
    http && rest.split('#').next().unwrap_or("").ends_with(".git")
}

/// Checks the (expanded) sources of an ADD.
pub(crate) fn check_add(srcs: &[String], checksum: Option<&str>, out: &mut Problems) {
    for src in srcs {
        if is_git_url(src) {
            let reference = src
                .split_once('#')
                .map(|(_, f)| f.split(':').next().unwrap_or(""))
                .unwrap_or("");
            let pinned = is_commit(reference) || checksum.is_some_and(is_commit);
            if !pinned {
                let what = if reference.is_empty() {
                    "the default branch".to_string()
                } else {
                    format!("`{reference}` (a branch or tag)")
                };
                out.add(
                    RuleId::GitNotCommit,
                    format!("ADD of `{src}` fetches {what}, not a commit"),
                );
            }
        } else if (src.starts_with("http://") || src.starts_with("https://")) && checksum.is_none()
        {
            out.add(
                RuleId::AddUrlNoChecksum,
                format!("ADD downloads `{src}` without --checksum"),
            );
        }
    }
}

/// `git [-C dir] [-c k=v] SUB ...`: the subcommand's index in `words`.
fn git_subcommand(cmd: &SimpleCommand) -> Option<usize> {
    if cmd.name() != "git" {
        return None;
    }
    let mut i = 1;
    while let Some(w) = cmd.words.get(i) {
        match w.text.as_str() {
            "-C" | "-c" | "--git-dir" | "--work-tree" | "--namespace" => i += 2,
            t if t.starts_with('-') => i += 1,
            _ => return Some(i),
        }
    }
    None
}

pub(crate) fn check_run(ctx: &RunCtx, out: &mut Problems) {
    let cmds = &ctx.script.commands;
    let mut clones = Vec::new();
    let mut pins = Vec::new();
    for (i, c) in cmds.iter().enumerate() {
        let Some(s) = git_subcommand(c) else {
            continue;
        };
        let args = &c.words[s + 1..];
        // A value only known at run time may well be a commit: give it the benefit of the doubt.
        let names_commit = args
            .iter()
            .any(|w| ctx.vars.resolve(w).is_none_or(|v| is_commit(&v)));
        match c.words[s].text.as_str() {
            "clone" => {
                let revision = args.iter().enumerate().any(|(j, w)| {
                    let v = match w.text.strip_prefix("--revision") {
                        Some(r) if r.starts_with('=') => Some(r[1..].to_string()),
                        Some("") => args.get(j + 1).map(|n| n.text.clone()),
                        _ => None,
                    };
                    v.is_some_and(|v| is_commit(&v))
                });
                if !revision {
                    let url = args
                        .iter()
                        .find(|w| !w.text.starts_with('-') && w.text.contains(['/', ':']))
                        .map_or("", |w| w.text.as_str());
                    let branch = super::option_value(args, &["--branch", "-b"]);
                    clones.push((i, url.to_string(), branch));
                }
            }
            "checkout" | "switch" | "reset" | "fetch" if names_commit => pins.push(i),
            _ => {}
        }
    }
    // Each clone needs its own commit checkout after it.
    let mut used = vec![false; pins.len()];
    for (at, url, branch) in clones {
        let pin = pins
            .iter()
            .enumerate()
            .find(|(k, &p)| !used[*k] && p > at)
            .map(|(k, _)| k);
        match pin {
            Some(k) => used[k] = true,
            None => {
                let what = match branch {
                    Some(b) => format!("`{b}` (a branch or tag)"),
                    None => "the default branch".to_string(),
                };
                out.add(
                    RuleId::GitNotCommit,
                    format!("`git clone {url}` checks out {what}, and no commit is checked out after it"),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn git_urls() {
        assert!(is_git_url("https://github.com/moby/buildkit.git#v0.19.0"));
        assert!(is_git_url("git@github.com:moby/buildkit.git"));
        assert!(!is_git_url("https://example.com/a.tar.gz"));
        let mut p = Problems::default();
        check_add(
            &["https://github.com/moby/buildkit.git#3637d1b15a13fc3cdd0c16fcf3be0845ae68f53d:docs".into()],
            None,
            &mut p,
        );
        assert!(p.0.is_empty());
        check_add(
            &["https://github.com/moby/buildkit.git#master".into()],
            None,
            &mut p,
        );
        check_add(
            &["https://example.com/a.tgz".into()],
            Some("sha256:00"),
            &mut p,
        );
        check_add(&["https://example.com/b.tgz".into()], None, &mut p);
        let rules: Vec<_> = p.0.iter().map(|(r, _)| *r).collect();
        assert_eq!(rules, [RuleId::GitNotCommit, RuleId::AddUrlNoChecksum]);
    }
}
