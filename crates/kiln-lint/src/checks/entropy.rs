//! Values that change from run to run: the clock (KL009), mktemp names
//! (KL010), random numbers (KL011) and the build host's identity (KL012).

use super::{assignments_of, dedup, list, option_value, Problems, RunCtx};
use crate::rules::RuleId;
use crate::shell::{SimpleCommand, Word};

pub(crate) fn check(ctx: &RunCtx, out: &mut Problems) {
    clock(ctx, out);
    mktemp(ctx, out);
    randomness(ctx, out);
    host(ctx, out);
}

/// Every word a command carries: program, arguments, assignment values,
/// redirection targets.
fn all_words(c: &SimpleCommand) -> impl Iterator<Item = &Word> {
    c.words
        .iter()
        .chain(c.assignments.iter().map(|a| &a.value))
        .chain(c.redirects.iter().map(|r| &r.target))
}

/// `date` that prints a fixed date: `-d @$SOURCE_DATE_EPOCH`, `-r FILE`,
/// `-d 2020-01-01`, but not `-d yesterday`.
fn date_is_fixed(ctx: &RunCtx, c: &SimpleCommand) -> bool {
    let args = c.args();
    if args.iter().any(|w| {
        matches!(w.text.as_str(), "-r" | "--reference" | "-f" | "--file")
            || w.text.starts_with("--reference=")
            || w.text.starts_with("--file=")
    }) {
        return true;
    }
    let Some(value) = option_value(args, &["-d", "--date"]) else {
        return false;
    };
    if value.contains("SOURCE_DATE_EPOCH") {
        return true;
    }
    let w = Word {
        dynamic: value.contains('$') || value.contains('`'),
        text: value,
    };
    match ctx.vars.resolve(&w) {
        // Only known at run time: cannot tell.
        None => true,
        Some(v) => {
            let v = v.to_ascii_lowercase();
            ![
                "now",
                "today",
                "yesterday",
                "tomorrow",
                "ago",
                "next",
                "last",
                "this",
            ]
            .iter()
            .any(|rel| v.contains(rel))
        }
    }
}

fn clock(ctx: &RunCtx, out: &mut Problems) {
    let mut what = Vec::new();
    for c in &ctx.script.commands {
        if c.name() == "date" && !date_is_fixed(ctx, c) {
            let args: Vec<&str> = c.words.iter().map(|w| w.text.as_str()).collect();
            what.push(if c.in_substitution {
                format!("`$({})`", args.join(" "))
            } else {
                format!("`{}`", args.join(" "))
            });
        }
        for w in all_words(c) {
            for v in ["EPOCHSECONDS", "EPOCHREALTIME"] {
                if w.mentions_var(v) {
                    what.push(format!("${v}"));
                }
            }
        }
    }
    dedup(&mut what);
    if !what.is_empty() {
        out.add(
            RuleId::Clock,
            format!("reads the wall clock: {}", list(&what)),
        );
    }
}

/// Where mktemp creates its file: `-p DIR`, `--tmpdir=DIR`, an absolute
/// template, `$TMPDIR`, else /tmp.
fn mktemp_dir(ctx: &RunCtx, c: &SimpleCommand) -> String {
    if let Some(d) = option_value(c.args(), &["-p", "--tmpdir"]) {
        return d;
    }
    if let Some(t) = c.args().iter().find(|w| w.text.starts_with('/')) {
        if let Some((dir, _)) = t.text.rsplit_once('/') {
            return if dir.is_empty() {
                "/".into()
            } else {
                dir.into()
            };
        }
    }
    ctx.vars.get("TMPDIR").unwrap_or("/tmp").to_string()
}

fn mktemp(ctx: &RunCtx, out: &mut Problems) {
    let cmds = &ctx.script.commands;
    let made = cmds
        .iter()
        .filter(|c| c.name() == "mktemp")
        .filter(|c| {
            !c.args()
                .iter()
                .any(|w| w.text == "-u" || w.text == "--dry-run")
        })
        .filter(|c| !ctx.mounted(&format!("{}/_", mktemp_dir(ctx, c).trim_end_matches('/'))))
        .count();
    if made == 0 {
        return;
    }
    // Variables that hold a mktemp name: `T=$(mktemp -d)`, `export T=$(mktemp)`.
    let held: Vec<String> = cmds
        .iter()
        .flat_map(assignments_of)
        .filter(|(_, v)| v.text.contains("$(mktemp") || v.text.contains("`mktemp"))
        .map(|(k, _)| k)
        .collect();
    let removed = |var: &str| {
        cmds.iter().any(|c| {
            let is_rm = c.name() == "rm";
            let is_trap = c.name() == "trap" && c.args().iter().any(|w| w.text.contains("rm "));
            (is_rm || is_trap) && c.args().iter().any(|w| w.mentions_var(var))
        })
    };
    let kept: Vec<String> = held
        .iter()
        .filter(|v| !removed(v))
        .map(|v| format!("${v}"))
        .collect();
    if made > held.len() || !kept.is_empty() {
        let detail = if kept.is_empty() {
            "its name is never kept, so it cannot be removed".to_string()
        } else {
            format!("{} is never removed", list(&kept))
        };
        out.add(
            RuleId::MktempLeft,
            format!("`mktemp` leaves a randomly named file in the layer: {detail}"),
        );
    }
}

fn randomness(ctx: &RunCtx, out: &mut Problems) {
    let mut what = Vec::new();
    for c in &ctx.script.commands {
        for w in all_words(c) {
            for v in ["RANDOM", "SRANDOM"] {
                if w.mentions_var(v) {
                    what.push(format!("${v}"));
                }
            }
            for dev in [
                "/proc/sys/kernel/random/uuid",
                "/dev/urandom",
                "/dev/random",
            ] {
                if w.text.contains(dev) {
                    what.push(dev.to_string());
                }
            }
        }
        let first = c.args().first().map(|w| w.text.as_str());
        match c.name() {
            "uuidgen" | "mcookie" => what.push(format!("`{}`", c.name())),
            "openssl" if first == Some("rand") => what.push("`openssl rand`".into()),
            "shuf"
                if !c
                    .args()
                    .iter()
                    .any(|w| w.text.starts_with("--random-source")) =>
            {
                what.push("`shuf`".into())
            }
            _ => {}
        }
    }
    dedup(&mut what);
    if !what.is_empty() {
        out.add(
            RuleId::Randomness,
            format!("uses values that differ on every run: {}", list(&what)),
        );
    }
}

fn host(ctx: &RunCtx, out: &mut Problems) {
    let mut what = Vec::new();
    for c in &ctx.script.commands {
        if all_words(c).any(|w| w.mentions_var("HOSTNAME")) {
            what.push("$HOSTNAME".to_string());
        }
        match c.name() {
            "hostname" | "hostnamectl" => what.push(format!("`{}`", c.name())),
            "uname" => {
                let host_flags = c.args().iter().any(|w| {
                    let t = w.text.as_str();
                    matches!(
                        t,
                        "--all" | "--nodename" | "--kernel-release" | "--kernel-version"
                    ) || (t.starts_with('-')
                        && !t.starts_with("--")
                        && t.chars().any(|ch| matches!(ch, 'a' | 'n' | 'r' | 'v')))
                });
                if host_flags {
                    let args: Vec<&str> = c.words.iter().map(|w| w.text.as_str()).collect();
                    what.push(format!("`{}`", args.join(" ")));
                }
            }
            _ => {
                if c.args().iter().any(|w| w.text == "/etc/hostname")
                    || c.redirects
                        .iter()
                        .any(|r| r.op == "<" && r.target.text == "/etc/hostname")
                {
                    what.push("/etc/hostname".into());
                }
            }
        }
    }
    dedup(&mut what);
    if !what.is_empty() {
        out.add(
            RuleId::HostIdentity,
            format!(
                "reads the identity of the machine that runs the build: {}",
                list(&what)
            ),
        );
    }
}
