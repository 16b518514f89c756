//! Files that package and user tools leave behind with the build's date in
//! them: apt lists (KL006), apt/dpkg logs and ldconfig's aux-cache (KL007),
//! /etc/shadow's last-change day (KL008).

use super::packages::apt_subcommand;
use super::{list, Problems, RunCtx};
use crate::rules::RuleId;

/// A file inside /var/lib/apt/lists (the directory itself may stay).
const APT_LISTS: &str = "/var/lib/apt/lists/_";

pub(crate) fn check(ctx: &RunCtx, out: &mut Problems) {
    apt_lists(ctx, out);
    logs(ctx, out);
    shadow(ctx, out);
}

fn apt_lists(ctx: &RunCtx, out: &mut Problems) {
    let last_update = ctx
        .script
        .commands
        .iter()
        .enumerate()
        .filter(|(_, c)| apt_subcommand(c).is_some_and(|(s, _)| s == "update"))
        .map(|(i, _)| i)
        .next_back();
    let Some(at) = last_update else {
        return;
    };
    if !ctx.cleaned(APT_LISTS, Some(at)) {
        let tool = ctx.script.commands[at].name();
        out.add(
            RuleId::AptListsLeft,
            format!("`{tool} update` leaves /var/lib/apt/lists in the layer (no `rm -rf /var/lib/apt/lists/*` after it)"),
        );
    }
}

fn logs(ctx: &RunCtx, out: &mut Problems) {
    let mut last: Option<(usize, bool)> = None;
    for (i, c) in ctx.script.commands.iter().enumerate() {
        let apt = apt_subcommand(c).is_some_and(|(s, _)| {
            matches!(
                s.as_str(),
                "install"
                    | "reinstall"
                    | "upgrade"
                    | "dist-upgrade"
                    | "full-upgrade"
                    | "remove"
                    | "purge"
                    | "autoremove"
                    | "build-dep"
            )
        });
        let dpkg = c.name() == "dpkg"
            && c.args().iter().any(|w| {
                matches!(
                    w.text.as_str(),
                    "-i" | "--install" | "-r" | "--remove" | "-P" | "--purge" | "--configure"
                )
            });
        if apt || dpkg {
            let any_apt = apt || last.is_some_and(|(_, a)| a);
            last = Some((i, any_apt));
        }
    }
    let Some((at, apt)) = last else {
        return;
    };
    let mut targets = vec![
        ("/var/log/dpkg.log", "/var/log/dpkg.log"),
        (
            "/var/cache/ldconfig/aux-cache",
            "/var/cache/ldconfig/aux-cache",
        ),
    ];
    if apt {
        targets.insert(0, ("/var/log/apt/", "/var/log/apt/history.log"));
    }
    let left: Vec<String> = targets
        .iter()
        .filter(|(_, path)| !ctx.cleaned(path, Some(at)))
        .map(|(shown, _)| shown.to_string())
        .collect();
    if !left.is_empty() {
        let tool = ctx.script.commands[at].name();
        out.add(
            RuleId::PackageLogsLeft,
            format!("`{tool}` leaves {} in the layer", list(&left)),
        );
    }
}

fn shadow(ctx: &RunCtx, out: &mut Problems) {
    let cmds = &ctx.script.commands;
    let creators: Vec<usize> = cmds
        .iter()
        .enumerate()
        .filter(|(_, c)| matches!(c.name(), "useradd" | "adduser"))
        .map(|(i, _)| i)
        .collect();
    let Some(&last) = creators.last() else {
        return;
    };
    // shadow-utils' useradd takes the day from SOURCE_DATE_EPOCH when set;
    // busybox adduser does not, so only useradd is let off.
    if ctx.sde && creators.iter().all(|&i| cmds[i].name() == "useradd") {
        return;
    }
    let tool = cmds[last].name();
    let reset = cmds
        .iter()
        .enumerate()
        .skip(last + 1)
        .filter(|(_, c)| match c.name() {
            "chage" => c.args().iter().any(|w| {
                w.text == "-d"
                    || w.text.starts_with("--lastday")
                    || (w.text.starts_with("-d") && w.text.len() > 2)
            }),
            "sed" | "perl" => {
                c.args()
                    .iter()
                    .any(|w| w.text.starts_with("-i") || w.text.starts_with("-pi"))
                    && c.args().iter().any(|w| w.text == "/etc/shadow")
            }
            _ => false,
        })
        .map(|(i, _)| i)
        .next_back();
    let mut missing = Vec::new();
    if reset.is_none() {
        missing.push("the last-change day is not reset (`chage -d`) after it".to_string());
    }
    if !ctx.cleaned("/etc/shadow-", Some(reset.unwrap_or(last))) {
        missing.push("the backup /etc/shadow- is not removed".to_string());
    }
    if !missing.is_empty() {
        out.add(
            RuleId::ShadowLastChange,
            format!(
                "`{tool}` writes the build day into /etc/shadow: {}",
                missing.join("; ")
            ),
        );
    }
}
