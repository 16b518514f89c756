//! Compilers that embed paths and times: Go without `-trimpath` and an empty
//! build ID (KL015), Python bytecode without SOURCE_DATE_EPOCH (KL016), and
//! RUNs that read SOURCE_DATE_EPOCH the stage never declared (KL019).

use super::packages::{pip_args, pip_install};
use super::{list, option_value, Problems, RunCtx};
use crate::rules::RuleId;
use crate::shell::{mentions_var, SimpleCommand};

pub(crate) fn check(ctx: &RunCtx, out: &mut Problems) {
    go(ctx, out);
    pyc(ctx, out);
    sde(ctx, out);
}

/// GOFLAGS for this command: its own assignment, else the environment.
fn goflags(ctx: &RunCtx, c: &SimpleCommand) -> String {
    c.assignments
        .iter()
        .rev()
        .find(|a| a.name == "GOFLAGS")
        .and_then(|a| ctx.vars.resolve(&a.value))
        .or_else(|| ctx.vars.get("GOFLAGS").map(str::to_string))
        .unwrap_or_default()
}

fn go(ctx: &RunCtx, out: &mut Problems) {
    let mut seen = Vec::new();
    for c in &ctx.script.commands {
        if c.name() != "go" {
            continue;
        }
        let mut args = c.args();
        if args.first().is_some_and(|w| w.text == "-C") {
            args = args.get(2..).unwrap_or(&[]);
        }
        let Some(sub) = args.first().map(|w| w.text.as_str()) else {
            continue;
        };
        if sub != "build" && sub != "install" {
            continue;
        }
        let flags = goflags(ctx, c);
        let trimpath = flags.contains("-trimpath")
            || args.iter().any(|w| {
                matches!(
                    w.text.as_str(),
                    "-trimpath" | "--trimpath" | "-trimpath=true"
                )
            });
        let ldflags = option_value(args, &["-ldflags", "--ldflags"]).unwrap_or_default();
        let buildid = flags.contains("-buildid=") || ldflags.contains("-buildid=");
        let mut missing = Vec::new();
        if !trimpath {
            missing.push("-trimpath".to_string());
        }
        if !buildid {
            missing.push("-ldflags=-buildid=".to_string());
        }
        if !missing.is_empty() {
            seen.push(format!("`go {sub}` without {}", list(&missing)));
        }
    }
    super::dedup(&mut seen);
    if !seen.is_empty() {
        out.add(
            RuleId::GoBuildFlags,
            format!(
                "{}: the binary embeds build paths and a build ID",
                seen.join("; ")
            ),
        );
    }
}

fn pyc(ctx: &RunCtx, out: &mut Problems) {
    if ctx.sde {
        return;
    }
    let mut what = Vec::new();
    for c in &ctx.script.commands {
        if let Some(p) = pip_args(c).and_then(pip_install) {
            let uv = c.name() == "uv";
            let no_compile = p.no_compile || ctx.vars.is_set("PIP_NO_COMPILE");
            let compiles = if uv {
                p.compile_bytecode || ctx.vars.is_set("UV_COMPILE_BYTECODE")
            } else {
                !no_compile
            };
            if compiles {
                what.push(format!("`{} install`", if uv { "uv pip" } else { "pip" }));
            }
            continue;
        }
        if c.name().starts_with("python") {
            let args = c.args();
            let m = args.iter().position(|w| w.text == "-m");
            let compileall =
                m.is_some_and(|m| args.get(m + 1).is_some_and(|w| w.text == "compileall"));
            if compileall {
                let mode = option_value(args, &["--invalidation-mode"]).unwrap_or_default();
                if !mode.ends_with("hash") {
                    what.push("`python -m compileall`".into());
                }
            } else if args.first().is_some_and(|w| w.text.ends_with("setup.py"))
                && args.iter().any(|w| w.text == "install")
            {
                what.push("`python setup.py install`".into());
            }
        }
    }
    super::dedup(&mut what);
    if !what.is_empty() {
        out.add(
            RuleId::PycTimestamps,
            format!(
                "{} writes .pyc files stamped with source mtimes (SOURCE_DATE_EPOCH is not set)",
                list(&what)
            ),
        );
    }
}

fn sde(ctx: &RunCtx, out: &mut Problems) {
    if !ctx.sde && mentions_var(ctx.text, "SOURCE_DATE_EPOCH") {
        out.add(
            RuleId::SdeArgMissing,
            "RUN reads $SOURCE_DATE_EPOCH, but the stage has no `ARG SOURCE_DATE_EPOCH`, so it is empty",
        );
    }
}
