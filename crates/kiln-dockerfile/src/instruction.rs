//! Typed instructions, built from the line parser's nodes with BuildKit
//! v0.19.0's validation (`frontend/dockerfile/instructions/parse.go`).
//!
//! Values are kept as written (quotes and `$VAR` intact) wherever BuildKit
//! expands them later, at dispatch; see `expand.rs`.

use crate::flags::{FlagKind, Flags};
use crate::gocompat::strconv::{parse_int, quote};
use crate::gocompat::suggest;
use crate::gocompat::time::parse_duration;
use crate::heredoc::{parse_heredoc, Heredoc};
use crate::mount::parse_mount;
use crate::syntax::Node;
use crate::ParseOptions;
use regex::Regex;
use std::sync::LazyLock;

/// Shell form or exec (JSON array) form of RUN, CMD and ENTRYPOINT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShellOrExec {
    /// Shell form: run as `[shell..., text]` with the stage's SHELL
    /// (`/bin/sh -c` by default). An instruction with no arguments is `Shell("")`.
    Shell(String),
    /// Exec form: the JSON array as written.
    Exec(Vec<String>),
}

impl ShellOrExec {
    /// The argument vector BuildKit runs or stores: exec form as is, shell
    /// form appended to `shell` (BuildKit's `withShell`).
    pub fn with_shell(&self, shell: &[String]) -> Vec<String> {
        match self {
            ShellOrExec::Shell(text) => {
                let mut v = shell.to_vec();
                v.push(text.clone());
                v
            }
            ShellOrExec::Exec(args) => args.clone(),
        }
    }

    /// True for the exec (JSON) form.
    pub fn is_exec(&self) -> bool {
        matches!(self, ShellOrExec::Exec(_))
    }
}

/// `--network` of RUN.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NetworkMode {
    /// Not given (or `default`): the build's default network.
    #[default]
    Default,
    /// `none`.
    None,
    /// `host`.
    Host,
}

/// `--security` of RUN (labs channel only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Security {
    /// The default.
    #[default]
    Sandbox,
    /// `insecure`.
    Insecure,
}

/// `RUN`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    /// The command. With heredocs this is the shell-form text naming them
    /// (e.g. `<<EOF` or `cat <<EOF > f`); BuildKit then runs
    /// `text + "\n" + body + name` for each heredoc, or just the (chomped)
    /// body when the text is a single heredoc word.
    pub cmd: ShellOrExec,
    /// Heredoc bodies, in order.
    pub heredocs: Vec<Heredoc>,
    /// `--mount` specs as written; [`Run::expand`](crate::expand) parses them.
    pub mounts: Vec<String>,
    /// `--network`.
    pub network: NetworkMode,
    /// `--security`.
    pub security: Security,
    /// Names of the flags that were given, in a fixed order.
    pub flags_used: Vec<String>,
}

/// `CMD`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cmd {
    /// The command.
    pub cmd: ShellOrExec,
}

/// `ENTRYPOINT`. BuildKit stores `ENTRYPOINT []` as a null entrypoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entrypoint {
    /// The command.
    pub cmd: ShellOrExec,
}

impl Entrypoint {
    /// The config value BuildKit stores: `None` for `ENTRYPOINT []`.
    pub fn config_value(&self, shell: &[String]) -> Option<Vec<String>> {
        match &self.cmd {
            ShellOrExec::Exec(a) if a.is_empty() => None,
            c => Some(c.with_shell(shell)),
        }
    }
}

/// `SHELL` (always exec form).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shell {
    /// The new shell, e.g. `["/bin/sh", "-ec"]`.
    pub shell: Vec<String>,
}

/// A heredoc used as a COPY/ADD source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InlineFile {
    /// The file name (the heredoc's name).
    pub path: String,
    /// The content, already tab-chomped for `<<-`.
    pub data: String,
    /// Whether variables in `data` are expanded at dispatch.
    pub expand: bool,
}

/// `COPY`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Copy {
    /// Source paths as written (not heredocs), in order.
    pub srcs: Vec<String>,
    /// Heredoc sources.
    pub inline: Vec<InlineFile>,
    /// Destination as written.
    pub dest: String,
    /// `--from` (a stage name, stage index or image); BuildKit v0.19.0 does
    /// not expand variables in it.
    pub from: Option<String>,
    /// `--chown`.
    pub chown: Option<String>,
    /// `--chmod`.
    pub chmod: Option<String>,
    /// `--link`.
    pub link: bool,
    /// `--parents` (labs channel only).
    pub parents: bool,
    /// `--exclude` patterns (labs channel only).
    pub exclude: Vec<String>,
}

/// `ADD`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Add {
    /// Source paths or URLs as written (not heredocs), in order.
    pub srcs: Vec<String>,
    /// Heredoc sources.
    pub inline: Vec<InlineFile>,
    /// Destination as written.
    pub dest: String,
    /// `--chown`.
    pub chown: Option<String>,
    /// `--chmod`.
    pub chmod: Option<String>,
    /// `--link`.
    pub link: bool,
    /// `--keep-git-dir`.
    pub keep_git_dir: bool,
    /// `--checksum`.
    pub checksum: Option<String>,
    /// `--exclude` patterns (labs channel only).
    pub exclude: Vec<String>,
}

/// One `key=value` of ENV or LABEL, both sides as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValue {
    /// The key.
    pub key: String,
    /// The value.
    pub value: String,
    /// Written in the legacy `ENV key value` form.
    pub legacy: bool,
}

/// `ENV`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Env {
    /// The assignments, in order.
    pub vars: Vec<KeyValue>,
}

/// `LABEL`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Label {
    /// The labels, in order.
    pub labels: Vec<KeyValue>,
}

/// One name of an `ARG`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgDef {
    /// The name (never expanded by BuildKit).
    pub key: String,
    /// The default value as written, if any.
    pub default: Option<String>,
}

/// `ARG`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arg {
    /// The declared names, in order.
    pub args: Vec<ArgDef>,
}

/// `WORKDIR`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workdir {
    /// The path as written.
    pub path: String,
}

/// `USER`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// The user as written.
    pub user: String,
}

/// `EXPOSE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expose {
    /// The port words as written, sorted bytewise (BuildKit sorts them while parsing).
    pub ports: Vec<String>,
}

/// `VOLUME`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Volume {
    /// The paths as written (trimmed).
    pub volumes: Vec<String>,
}

/// `STOPSIGNAL`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StopSignal {
    /// The signal as written.
    pub signal: String,
}

/// `HEALTHCHECK`, shaped like the image config's `Healthcheck`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Healthcheck {
    /// `["NONE"]`, `["CMD", args...]` (exec form) or `["CMD-SHELL", command]`.
    pub test: Vec<String>,
    /// `--interval` in nanoseconds (0 when not given).
    pub interval: i64,
    /// `--timeout` in nanoseconds.
    pub timeout: i64,
    /// `--start-period` in nanoseconds.
    pub start_period: i64,
    /// `--start-interval` in nanoseconds.
    pub start_interval: i64,
    /// `--retries` (0 when not given).
    pub retries: i32,
}

/// `ONBUILD`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Onbuild {
    /// The trigger as BuildKit stores it in the image config: the line after
    /// `ONBUILD `, plus `"\n" + body + name` for each heredoc.
    pub expression: String,
}

/// `MAINTAINER` (deprecated).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Maintainer {
    /// The text as written.
    pub maintainer: String,
}

/// Every instruction but FROM (which starts a [`crate::Stage`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Instruction {
    /// `RUN`.
    Run(Run),
    /// `CMD`.
    Cmd(Cmd),
    /// `ENTRYPOINT`.
    Entrypoint(Entrypoint),
    /// `SHELL`.
    Shell(Shell),
    /// `COPY`.
    Copy(Copy),
    /// `ADD`.
    Add(Add),
    /// `ENV`.
    Env(Env),
    /// `LABEL`.
    Label(Label),
    /// `ARG`.
    Arg(Arg),
    /// `WORKDIR`.
    Workdir(Workdir),
    /// `USER`.
    User(User),
    /// `EXPOSE`.
    Expose(Expose),
    /// `VOLUME`.
    Volume(Volume),
    /// `STOPSIGNAL`.
    StopSignal(StopSignal),
    /// `HEALTHCHECK`.
    Healthcheck(Healthcheck),
    /// `ONBUILD`.
    Onbuild(Onbuild),
    /// `MAINTAINER`.
    Maintainer(Maintainer),
}

impl Instruction {
    /// The upper-case instruction name.
    pub fn name(&self) -> &'static str {
        match self {
            Instruction::Run(_) => "RUN",
            Instruction::Cmd(_) => "CMD",
            Instruction::Entrypoint(_) => "ENTRYPOINT",
            Instruction::Shell(_) => "SHELL",
            Instruction::Copy(_) => "COPY",
            Instruction::Add(_) => "ADD",
            Instruction::Env(_) => "ENV",
            Instruction::Label(_) => "LABEL",
            Instruction::Arg(_) => "ARG",
            Instruction::Workdir(_) => "WORKDIR",
            Instruction::User(_) => "USER",
            Instruction::Expose(_) => "EXPOSE",
            Instruction::Volume(_) => "VOLUME",
            Instruction::StopSignal(_) => "STOPSIGNAL",
            Instruction::Healthcheck(_) => "HEALTHCHECK",
            Instruction::Onbuild(_) => "ONBUILD",
            Instruction::Maintainer(_) => "MAINTAINER",
        }
    }
}

/// A `FROM` line, values as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct From {
    /// The base: an image reference, `scratch`, or an earlier stage's name;
    /// expanded with the meta args (see [`From::expand`](crate::expand)).
    pub image: String,
    /// `--platform` as written.
    pub platform: Option<String>,
    /// The stage name after `AS`, lower-cased (BuildKit compares names case-insensitively).
    pub name: Option<String>,
}

/// What a node turns into.
pub(crate) enum Parsed {
    From(From),
    Instruction(Instruction),
}

const ALL_INSTRUCTIONS: &[&str] = &[
    "ADD",
    "ARG",
    "CMD",
    "COPY",
    "ENTRYPOINT",
    "ENV",
    "EXPOSE",
    "FROM",
    "HEALTHCHECK",
    "LABEL",
    "MAINTAINER",
    "ONBUILD",
    "RUN",
    "SHELL",
    "STOPSIGNAL",
    "USER",
    "VOLUME",
    "WORKDIR",
];

static STAGE_NAME: LazyLock<Regex> =
    LazyLock::new(|| Regex::new("^[a-z][a-z0-9_.-]*$").expect("static regex"));

fn exactly_one(cmd: &str) -> String {
    format!("{cmd} requires exactly one argument")
}

fn at_least_one(cmd: &str) -> String {
    format!("{cmd} requires at least one argument")
}

fn no_destination(cmd: &str) -> String {
    format!("{cmd} requires at least two arguments, but only one was provided. Destination could not be determined")
}

/// BuildKit's `handleJSONArgs` + `PrependShell`.
fn shell_or_exec(node: &Node) -> ShellOrExec {
    if node.json {
        ShellOrExec::Exec(node.args.clone())
    } else {
        ShellOrExec::Shell(node.args.join(" "))
    }
}

fn key_values(args: &[String], cmd: &str) -> Result<Vec<KeyValue>, String> {
    if args.is_empty() {
        return Err(at_least_one(cmd));
    }
    if args.len() % 3 != 0 {
        return Err(format!("Bad input to {cmd}, too many arguments"));
    }
    let mut out = Vec::new();
    for kv in args.chunks(3) {
        if kv[0].is_empty() {
            return Err(format!("{cmd} names can not be blank"));
        }
        out.push(KeyValue {
            key: kv[0].clone(),
            value: kv[1].clone(),
            legacy: kv[2].is_empty(),
        });
    }
    Ok(out)
}

/// Sources, inline sources and destination of COPY/ADD.
fn sources_and_dest(
    node: &Node,
    cmd: &str,
) -> Result<(Vec<String>, Vec<InlineFile>, String), String> {
    let (srcs, dest) = node.args.split_at(node.args.len() - 1);
    let dest = dest[0].clone();
    if matches!(parse_heredoc(&dest), Ok(Some(_))) {
        return Err(format!("{cmd} cannot accept a heredoc as a destination"));
    }
    let mut paths = Vec::new();
    let mut inline = Vec::new();
    for src in srcs {
        match parse_heredoc(src) {
            Ok(Some(h)) => {
                // The last heredoc of that name wins, like BuildKit's map.
                let body = node.heredocs.iter().rev().find(|d| d.name == h.name);
                let content = body.map(|d| d.content.clone()).unwrap_or_default();
                let data = if h.chomp {
                    crate::heredoc::chomp_content(&content)
                } else {
                    content
                };
                inline.push(InlineFile {
                    path: h.name,
                    data,
                    expand: h.expand,
                });
            }
            _ => paths.push(src.clone()),
        }
    }
    Ok((paths, inline, dest))
}

fn parse_interval(flags: &Flags, name: &str) -> Result<i64, String> {
    let s = flags.string_or_empty(name);
    if s.is_empty() {
        return Ok(0);
    }
    let d = parse_duration(&s)?;
    if d == 0 {
        return Ok(0);
    }
    if d < 1_000_000 {
        return Err(format!("Interval {} cannot be less than 1ms", quote(name)));
    }
    Ok(d)
}

fn parse_from(node: &Node) -> Result<From, String> {
    let args = &node.args;
    let name = if args.len() == 3 && args[1].eq_ignore_ascii_case("as") {
        let lower = args[2].to_lowercase();
        if !STAGE_NAME.is_match(&lower) {
            return Err(format!(
                "invalid name for build stage: {}, name can't start with a number or contain symbols",
                quote(&args[2])
            ));
        }
        Some(lower)
    } else if args.len() != 1 {
        return Err("FROM requires either one or three arguments".into());
    } else {
        None
    };
    let flags = Flags::parse(&[("platform", FlagKind::String)], &node.flags)?;
    Ok(From {
        image: args[0].clone(),
        platform: flags.string("platform"),
        name,
    })
}

fn parse_run(node: &Node, opts: &ParseOptions) -> Result<Run, String> {
    let mut defs = vec![("mount", FlagKind::Strings), ("network", FlagKind::String)];
    if opts.labs {
        defs.push(("security", FlagKind::String));
    }
    let flags = Flags::parse(&defs, &node.flags)?;
    let mounts = flags.strings("mount");
    for m in &mounts {
        parse_mount(m, None)?;
    }
    let network = match flags.given("network").as_deref().unwrap_or("default") {
        "default" => NetworkMode::Default,
        "none" => NetworkMode::None,
        "host" => NetworkMode::Host,
        other => return Err(format!("invalid network mode {}", quote(other))),
    };
    let security = match flags.given("security").as_deref().unwrap_or("sandbox") {
        "sandbox" => Security::Sandbox,
        "insecure" => Security::Insecure,
        other => return Err(format!("security {} is not valid", quote(other))),
    };
    Ok(Run {
        cmd: shell_or_exec(node),
        heredocs: node.heredocs.clone(),
        mounts,
        network,
        security,
        flags_used: flags.used(),
    })
}

fn parse_healthcheck(node: &Node) -> Result<Healthcheck, String> {
    if node.args.is_empty() {
        return Err(at_least_one("HEALTHCHECK"));
    }
    let typ = node.args[0].to_uppercase();
    let args = &node.args[1..];
    if typ == "NONE" {
        // BuildKit does not even look at the flags here.
        if !args.is_empty() {
            return Err("HEALTHCHECK NONE takes no arguments".into());
        }
        return Ok(Healthcheck {
            test: vec![typ],
            interval: 0,
            timeout: 0,
            start_period: 0,
            start_interval: 0,
            retries: 0,
        });
    }
    let flags = Flags::parse(
        &[
            ("interval", FlagKind::String),
            ("timeout", FlagKind::String),
            ("start-period", FlagKind::String),
            ("start-interval", FlagKind::String),
            ("retries", FlagKind::String),
        ],
        &node.flags,
    )?;
    if typ != "CMD" {
        return Err(format!(
            "Unknown type {} in HEALTHCHECK (try CMD)",
            quote(&typ)
        ));
    }
    let cmd: Vec<String> = if args.is_empty() {
        Vec::new()
    } else if node.json {
        args.to_vec()
    } else {
        vec![args.join(" ")]
    };
    if cmd.is_empty() {
        return Err("Missing command after HEALTHCHECK CMD".into());
    }
    let mut test = vec![if node.json {
        "CMD".to_string()
    } else {
        "CMD-SHELL".to_string()
    }];
    test.extend(cmd);
    let interval = parse_interval(&flags, "interval")?;
    let timeout = parse_interval(&flags, "timeout")?;
    let start_period = parse_interval(&flags, "start-period")?;
    let start_interval = parse_interval(&flags, "start-interval")?;
    let retries = match flags.string_or_empty("retries") {
        r if r.is_empty() => 0,
        r => {
            let v = parse_int(&r, 32).map_err(|e| e.to_string())?;
            if v < 0 {
                return Err(format!("--retries cannot be negative ({v})"));
            }
            v as i32
        }
    };
    Ok(Healthcheck {
        test,
        interval,
        timeout,
        start_period,
        start_interval,
        retries,
    })
}

static ONBUILD_PREFIX: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)^[\t\n\x0C\r ]*ONBUILD[\t\n\x0C\r ]*").expect("static regex")
});

fn parse_onbuild(node: &Node) -> Result<Onbuild, String> {
    if node.args.is_empty() {
        return Err(at_least_one("ONBUILD"));
    }
    Flags::parse(&[], &node.flags)?;
    let trigger = node.args[0].trim().to_uppercase();
    match trigger.as_str() {
        "ONBUILD" => return Err("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed".into()),
        "MAINTAINER" | "FROM" => {
            return Err(format!("{trigger} isn't allowed as an ONBUILD trigger"))
        }
        _ => {}
    }
    let mut expression = ONBUILD_PREFIX.replace(&node.original, "").into_owned();
    for h in &node.heredocs {
        expression.push('\n');
        expression.push_str(&h.content);
        expression.push_str(&h.name);
    }
    Ok(Onbuild { expression })
}

/// BuildKit's `ParseInstruction`.
pub(crate) fn parse_node(node: &Node, opts: &ParseOptions) -> Result<Parsed, String> {
    let no_flags = |node: &Node| Flags::parse(&[], &node.flags).map(|_| ());
    let args = &node.args;
    let i = match node.cmd.to_ascii_lowercase().as_str() {
        "from" => return parse_from(node).map(Parsed::From),
        "env" => {
            no_flags(node)?;
            Instruction::Env(Env {
                vars: key_values(args, "ENV")?,
            })
        }
        "maintainer" => {
            if args.len() != 1 {
                return Err(exactly_one("MAINTAINER"));
            }
            no_flags(node)?;
            Instruction::Maintainer(Maintainer {
                maintainer: args[0].clone(),
            })
        }
        "label" => {
            no_flags(node)?;
            Instruction::Label(Label {
                labels: key_values(args, "LABEL")?,
            })
        }
        "add" => {
            if args.len() < 2 {
                return Err(no_destination("ADD"));
            }
            let mut defs = Vec::new();
            if opts.labs {
                defs.push(("exclude", FlagKind::Strings));
            }
            defs.extend([
                ("chown", FlagKind::String),
                ("chmod", FlagKind::String),
                ("link", FlagKind::Bool),
                ("keep-git-dir", FlagKind::Bool),
                ("checksum", FlagKind::String),
            ]);
            let f = Flags::parse(&defs, &node.flags)?;
            let (srcs, inline, dest) = sources_and_dest(node, "ADD")?;
            Instruction::Add(Add {
                srcs,
                inline,
                dest,
                chown: f.string("chown"),
                chmod: f.string("chmod"),
                link: f.bool("link"),
                keep_git_dir: f.bool("keep-git-dir"),
                checksum: f.string("checksum"),
                exclude: f.strings("exclude"),
            })
        }
        "copy" => {
            if args.len() < 2 {
                return Err(no_destination("COPY"));
            }
            let mut defs = Vec::new();
            if opts.labs {
                defs.extend([("exclude", FlagKind::Strings), ("parents", FlagKind::Bool)]);
            }
            defs.extend([
                ("chown", FlagKind::String),
                ("from", FlagKind::String),
                ("chmod", FlagKind::String),
                ("link", FlagKind::Bool),
            ]);
            let f = Flags::parse(&defs, &node.flags)?;
            let (srcs, inline, dest) = sources_and_dest(node, "COPY")?;
            Instruction::Copy(Copy {
                srcs,
                inline,
                dest,
                from: f.string("from"),
                chown: f.string("chown"),
                chmod: f.string("chmod"),
                link: f.bool("link"),
                parents: f.bool("parents"),
                exclude: f.strings("exclude"),
            })
        }
        "onbuild" => Instruction::Onbuild(parse_onbuild(node)?),
        "workdir" => {
            if args.len() != 1 {
                return Err(exactly_one("WORKDIR"));
            }
            no_flags(node)?;
            Instruction::Workdir(Workdir {
                path: args[0].clone(),
            })
        }
        "run" => Instruction::Run(parse_run(node, opts)?),
        "cmd" => {
            no_flags(node)?;
            Instruction::Cmd(Cmd {
                cmd: shell_or_exec(node),
            })
        }
        "healthcheck" => Instruction::Healthcheck(parse_healthcheck(node)?),
        "entrypoint" => {
            no_flags(node)?;
            Instruction::Entrypoint(Entrypoint {
                cmd: shell_or_exec(node),
            })
        }
        "expose" => {
            if args.is_empty() {
                return Err(at_least_one("EXPOSE"));
            }
            no_flags(node)?;
            let mut ports = args.clone();
            ports.sort();
            Instruction::Expose(Expose { ports })
        }
        "user" => {
            if args.len() != 1 {
                return Err(exactly_one("USER"));
            }
            no_flags(node)?;
            Instruction::User(User {
                user: args[0].clone(),
            })
        }
        "volume" => {
            if args.is_empty() {
                return Err(at_least_one("VOLUME"));
            }
            no_flags(node)?;
            let mut volumes = Vec::new();
            for v in args {
                let v = v.trim_matches(crate::gocompat::unicode::is_space);
                if v.is_empty() {
                    return Err("VOLUME specified can not be an empty string".into());
                }
                volumes.push(v.to_string());
            }
            Instruction::Volume(Volume { volumes })
        }
        "stopsignal" => {
            // BuildKit never parses STOPSIGNAL's flags.
            if args.len() != 1 {
                return Err(exactly_one("STOPSIGNAL"));
            }
            Instruction::StopSignal(StopSignal {
                signal: args[0].clone(),
            })
        }
        "arg" => {
            // BuildKit never parses ARG's flags either.
            if args.is_empty() {
                return Err(at_least_one("ARG"));
            }
            let mut defs = Vec::new();
            for a in args {
                match a.split_once('=') {
                    Some(("", _)) => return Err("ARG names can not be blank".into()),
                    Some((k, v)) => defs.push(ArgDef {
                        key: k.to_string(),
                        default: Some(v.to_string()),
                    }),
                    None => defs.push(ArgDef {
                        key: a.clone(),
                        default: None,
                    }),
                }
            }
            Instruction::Arg(Arg { args: defs })
        }
        "shell" => {
            no_flags(node)?;
            if args.is_empty() {
                return Err(at_least_one("SHELL"));
            }
            if !node.json {
                return Err("SHELL requires the arguments to be in JSON form".into());
            }
            Instruction::Shell(Shell {
                shell: args.clone(),
            })
        }
        _ => {
            return Err(suggest::wrap(
                format!("unknown instruction: {}", node.cmd),
                &node.cmd,
                ALL_INSTRUCTIONS,
                false,
            ))
        }
    };
    Ok(Parsed::Instruction(i))
}

/// What a RUN executes, as BuildKit's `dispatchRun` builds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunArgs {
    /// The process arguments (shell prepended for the shell form).
    pub args: Vec<String>,
    /// A single heredoc starting with `#!` is not fed to the shell: BuildKit
    /// writes it (tab-chomped for `<<-`) as an executable file (mode 0755)
    /// named [`InlineScript::name`] in a read-only mount at `/dev/pipes/`,
    /// and runs that path.
    pub script: Option<InlineScript>,
    /// The step name suffix BuildKit shows for a single heredoc:
    /// ` (first line...)`.
    pub name_suffix: Option<String>,
}

/// The file of a `#!` heredoc RUN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InlineScript {
    /// The heredoc name, also the file name under `/dev/pipes/`.
    pub name: String,
    /// The file content.
    pub data: String,
}

impl Run {
    /// The arguments BuildKit runs for this RUN under `shell` (the stage's
    /// SHELL, or `["/bin/sh", "-c"]`) on a Linux target. The history entry
    /// is `"RUN " + args` (prefixed by `|N K=V ...` when build args are in scope).
    pub fn command_args(&self, shell: &[String]) -> Result<RunArgs, String> {
        let (args, prepend) = match &self.cmd {
            ShellOrExec::Shell(t) => (vec![t.clone()], true),
            ShellOrExec::Exec(a) => (a.clone(), false),
        };
        let mut out = RunArgs {
            args,
            script: None,
            name_suffix: None,
        };
        if let Some(first) = self.heredocs.first() {
            if out.args.len() != 1 || !prepend {
                return Err(format!(
                    "parsing produced an invalid run command: [{}]",
                    out.args.join(" ")
                ));
            }
            if matches!(parse_heredoc(&out.args[0]), Ok(Some(_))) {
                let data = first.chomped_content();
                if first.content.starts_with("#!") {
                    out.script = Some(InlineScript {
                        name: first.name.clone(),
                        data,
                    });
                    out.args = vec![format!("/dev/pipes/{}", first.name)];
                } else {
                    out.args = vec![data];
                }
                let doc = first
                    .content
                    .trim_matches(crate::gocompat::unicode::is_space)
                    .replace("\r\n", "\n");
                let mut lines = doc.split('\n');
                let mut summary = lines.next().unwrap_or_default().to_string();
                if lines.next().is_some() {
                    summary.push_str("...");
                }
                out.name_suffix = Some(format!(" ({summary})"));
            } else {
                let mut full = out.args[0].clone();
                for h in &self.heredocs {
                    full.push('\n');
                    full.push_str(&h.content);
                    full.push_str(&h.name);
                }
                out.args = vec![full];
            }
        }
        if prepend {
            let mut v = shell.to_vec();
            v.push(out.args.join(" "));
            out.args = v;
        }
        Ok(out)
    }
}
