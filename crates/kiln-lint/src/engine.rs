//! Walks a parsed Dockerfile stage by stage, keeps what each stage knows
//! (ENV and ARG values, SOURCE_DATE_EPOCH in scope, apt pointed at a
//! snapshot, the SHELL), runs the checks on each instruction and applies
//! inline suppressions.

use crate::checks::{self, images, sources, vcs, Problems, RunCtx, Vars};
use crate::context::BuildContext;
use crate::report::Finding;
use crate::rules::RuleId;
use crate::shell::{self, is_shell, Script};
use crate::suppress::Suppressions;
use crate::LintError;
use kiln_dockerfile::{
    Dockerfile, EnvList, EnvLookup, Expanded, Instruction, Lexer, MountType, Run, ShellOrExec,
};
use std::collections::BTreeMap;

/// What `kiln lint` knows about the build beyond the Dockerfile.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LintOptions {
    /// `--build-arg NAME=VALUE`: values for ARGs (used to resolve templated bases).
    pub build_args: BTreeMap<String, String>,
    /// `--build-context NAME=VALUE`: named contexts that replace images
    /// (`docker-image://REF`, `oci-layout://DIR@sha256:...`, a directory).
    pub build_contexts: BTreeMap<String, String>,
}

const SDE: &str = "SOURCE_DATE_EPOCH";

/// BuildKit's automatic platform args, for expanding FROM lines. Their
/// values never decide whether a reference is pinned.
fn predefined() -> EnvList {
    EnvList::from_list([
        "TARGETPLATFORM=linux/amd64",
        "TARGETOS=linux",
        "TARGETARCH=amd64",
        "TARGETVARIANT=",
        "BUILDPLATFORM=linux/amd64",
        "BUILDOS=linux",
        "BUILDARCH=amd64",
        "BUILDVARIANT=",
    ])
}

#[derive(Debug, Clone)]
struct StageState {
    env: EnvList,
    args: EnvList,
    sde_env: bool,
    sde_arg: bool,
    apt_snapshot: bool,
    shell: Vec<String>,
}

impl StageState {
    fn new() -> StageState {
        StageState {
            env: EnvList::new(),
            args: EnvList::new(),
            sde_env: false,
            sde_arg: false,
            apt_snapshot: false,
            shell: vec!["/bin/sh".into(), "-c".into()],
        }
    }

    /// A stage built `FROM` this one: ENV, SHELL and the apt sources carry
    /// over, ARGs do not.
    fn child(&self) -> StageState {
        self.clone().into_child()
    }

    /// [`StageState::child`], for the last stage built on this one.
    fn into_child(self) -> StageState {
        StageState {
            args: EnvList::new(),
            sde_arg: false,
            ..self
        }
    }

    fn sde(&self) -> bool {
        self.sde_env || self.sde_arg
    }
}

impl EnvLookup for StageState {
    fn lookup(&self, key: &str) -> Option<&str> {
        self.env.get(key).or_else(|| self.args.get(key))
    }
}

/// Text that shows apt being pointed at a dated snapshot mirror.
fn mentions_snapshot(text: &str) -> bool {
    text.contains("repro-sources-list")
        || text.contains("snapshot.debian.org")
        || text.contains("snapshot-cloudflare.debian.org")
        || text.contains("snapshot.ubuntu.com")
}

struct Walker<'a> {
    df: &'a Dockerfile,
    lex: Lexer,
    meta: EnvList,
    context: Option<&'a BuildContext>,
    opts: &'a LintOptions,
    suppressions: Suppressions,
    findings: Vec<Finding>,
}

/// Lints a parsed Dockerfile. Context rules run only when `context` is given.
pub fn lint(
    df: &Dockerfile,
    context: Option<&BuildContext>,
    opts: &LintOptions,
) -> Result<Vec<Finding>, LintError> {
    let meta = df.meta_env(&predefined(), &opts.build_args)?;
    let mut w = Walker {
        df,
        lex: df.lexer(),
        meta,
        context,
        opts,
        suppressions: Suppressions::new(&df.comments),
        findings: Vec::new(),
    };
    w.walk()?;
    let mut findings = w.findings;
    findings.sort_by(|a, b| (a.line, a.rule, &a.message).cmp(&(b.line, b.rule, &b.message)));
    Ok(findings)
}

impl Walker<'_> {
    fn err(&self, line: usize, message: impl ToString) -> LintError {
        LintError::Expand {
            file: self.df.file.clone(),
            line,
            message: message.to_string(),
        }
    }

    /// Records one instruction's problems, one finding per rule.
    fn report(
        &mut self,
        line: usize,
        end_line: usize,
        problems: Problems,
        extra_comments: &[String],
    ) {
        let mut by_rule: BTreeMap<RuleId, Vec<String>> = BTreeMap::new();
        for (rule, msg) in problems.0 {
            let msgs = by_rule.entry(rule).or_default();
            if !msgs.contains(&msg) {
                msgs.push(msg);
            }
        }
        let silenced = self
            .suppressions
            .for_instruction(line, end_line, extra_comments);
        for (rule, msgs) in by_rule {
            if silenced.covers(rule) {
                continue;
            }
            self.findings.push(Finding {
                rule,
                line,
                end_line,
                message: msgs.join("; "),
            });
        }
    }

    /// Whether `name` (as in `COPY --from=name`) is a stage rather than an image.
    fn is_stage_ref(&self, name: &str) -> bool {
        name.parse::<usize>().is_ok() || self.df.stage_by_name(name).is_some()
    }

    fn walk(&mut self) -> Result<(), LintError> {
        let df = self.df;
        // Each stage's base among the stages before it (by name), found up front so that
        // the last stage built on a stage can take its state instead of copying it (a chain
        // of stages would otherwise keep a copy of the environment per stage).
        let mut first_named: BTreeMap<&str, usize> = BTreeMap::new();
        let mut bases: Vec<Result<(String, Option<usize>), LintError>> = Vec::new();
        for (i, stage) in df.stages.iter().enumerate() {
            let base = self
                .lex
                .process_word(&stage.from.image, &self.meta)
                .map_err(|e| self.err(stage.line, e))
                .map(|image| {
                    let j = first_named.get(image.as_str()).copied();
                    (image, j)
                });
            if let Some(name) = stage.name.as_deref() {
                first_named.entry(name).or_insert(i);
            }
            bases.push(base);
        }
        let mut last_child: Vec<Option<usize>> = vec![None; df.stages.len()];
        for (i, b) in bases.iter().enumerate() {
            if let Ok((_, Some(j))) = b {
                last_child[*j] = Some(i);
            }
        }
        let mut states: Vec<Option<StageState>> = Vec::with_capacity(df.stages.len());
        for ((i, stage), base) in df.stages.iter().enumerate().zip(bases) {
            let (image, base) = base?;
            let mut st = match base {
                // Every stage before this one left its state, unless its last child took it.
                Some(j) if last_child[j] == Some(i) => states[j]
                    .take()
                    .map_or_else(StageState::new, StageState::into_child),
                Some(j) => states[j]
                    .as_ref()
                    .map_or_else(StageState::new, StageState::child),
                None => {
                    let mut p = Problems::default();
                    if let Some(msg) =
                        images::check_image(&stage.from.image, &image, &self.opts.build_contexts)
                    {
                        p.add(RuleId::FloatingBaseImage, format!("FROM {msg}"));
                    }
                    self.report(stage.line, stage.end_line, p, &[]);
                    StageState::new()
                }
            };
            for cmd in &stage.commands {
                let mut p = Problems::default();
                let mut comments = Vec::new();
                self.instruction(&mut st, &cmd.instruction, cmd.line, &mut p, &mut comments)?;
                self.report(cmd.line, cmd.end_line, p, &comments);
            }
            // Kept only for the stages built on it.
            states.push(last_child[i].map(|_| st));
        }
        Ok(())
    }

    fn instruction(
        &self,
        st: &mut StageState,
        ins: &Instruction,
        line: usize,
        p: &mut Problems,
        comments: &mut Vec<String>,
    ) -> Result<(), LintError> {
        match ins {
            Instruction::Arg(arg) => {
                for def in &arg.args {
                    let value = def
                        .resolve(&self.lex, st, &self.opts.build_args, &self.meta)
                        .map_err(|e| self.err(line, e))?;
                    if let Some(v) = value {
                        st.args.set(&def.key, &v);
                    }
                    if def.key == SDE {
                        st.sde_arg = true;
                    }
                }
            }
            Instruction::Env(_) => {
                if let Expanded::Env(env) =
                    ins.expand(&self.lex, st).map_err(|e| self.err(line, e))?
                {
                    for kv in env.vars {
                        st.env.set(&kv.key, &kv.value);
                        if kv.key == SDE {
                            st.sde_env = true;
                        }
                    }
                }
            }
            Instruction::Shell(s) => st.shell = s.shell.clone(),
            Instruction::Copy(copy) => match &copy.from {
                Some(from) if !self.is_stage_ref(from) => {
                    if let Some(msg) = images::check_image(from, from, &self.opts.build_contexts) {
                        p.add(RuleId::FloatingBaseImage, format!("COPY --from={msg}"));
                    }
                }
                Some(_) => {}
                None => {
                    let c = copy.expand(&self.lex, st).map_err(|e| self.err(line, e))?;
                    if let Some(ctx) = self.context {
                        vcs::check_copy("COPY", &c.srcs, ctx, p);
                    }
                    let inline: Vec<&str> = c.inline.iter().map(|f| f.data.as_str()).collect();
                    self.note_apt_sources(st, &c.srcs, &inline, &c.dest);
                }
            },
            Instruction::Add(add) => {
                let a = add.expand(&self.lex, st).map_err(|e| self.err(line, e))?;
                sources::check_add(&a.srcs, a.checksum.as_deref(), p);
                if let Some(ctx) = self.context {
                    vcs::check_copy("ADD", &a.srcs, ctx, p);
                }
                let inline: Vec<&str> = a.inline.iter().map(|f| f.data.as_str()).collect();
                self.note_apt_sources(st, &a.srcs, &inline, &a.dest);
            }
            Instruction::Run(run) => self.run_instruction(st, run, line, p, comments)?,
            _ => {}
        }
        Ok(())
    }

    /// A sources.list copied into /etc/apt/ that points at a snapshot mirror.
    fn note_apt_sources(&self, st: &mut StageState, srcs: &[String], inline: &[&str], dest: &str) {
        if !dest.starts_with("/etc/apt") {
            return;
        }
        let from_context = srcs
            .iter()
            .filter_map(|s| self.context.and_then(|c| c.read(s)))
            .any(|t| mentions_snapshot(&t));
        if from_context || inline.iter().any(|t| mentions_snapshot(t)) {
            st.apt_snapshot = true;
        }
    }

    fn run_instruction(
        &self,
        st: &mut StageState,
        run: &Run,
        line: usize,
        p: &mut Problems,
        comments: &mut Vec<String>,
    ) -> Result<(), LintError> {
        let mounts = run
            .expand_mounts(&self.lex, st)
            .map_err(|e| self.err(line, e))?;
        for m in &mounts {
            if let Some(from) = m.from.as_deref() {
                if matches!(m.kind, MountType::Bind | MountType::Cache) && !self.is_stage_ref(from)
                {
                    if let Some(msg) = images::check_image(from, from, &self.opts.build_contexts) {
                        p.add(RuleId::FloatingBaseImage, format!("RUN --mount from={msg}"));
                    }
                }
            }
        }
        let posix = st
            .shell
            .first()
            .is_some_and(|s| is_shell(s.rsplit('/').next().unwrap_or("")));
        let (script, text) = match &run.cmd {
            ShellOrExec::Exec(argv) => (shell::from_argv(argv), argv.join(" ")),
            ShellOrExec::Shell(_) if !posix => return Ok(()),
            ShellOrExec::Shell(_) => {
                let args = run.command_args(&[]).map_err(|e| self.err(line, e))?;
                let text = args.args.join(" ");
                let script = match &args.script {
                    // `RUN <<EOF` with a `#!` line: a file run by its interpreter.
                    Some(s) => {
                        let interp = s.data.lines().next().unwrap_or("");
                        let shell_interp = interp
                            .split_whitespace()
                            .flat_map(|w| w.rsplit('/').next())
                            .any(is_shell);
                        if shell_interp {
                            shell::parse(&s.data)
                        } else {
                            Script::default()
                        }
                    }
                    None => shell::parse(&text),
                };
                let full = match &args.script {
                    Some(s) => s.data.clone(),
                    None => text,
                };
                (script, full)
            }
        };
        comments.extend(script.comments.iter().cloned());
        if mentions_snapshot(&text) {
            st.apt_snapshot = true;
        }
        let vars = Vars::new(st, &script);
        let assigns_sde = script
            .commands
            .iter()
            .any(|c| checks::assignments_of(c).iter().any(|(k, _)| k == SDE));
        let ctx = RunCtx {
            script: &script,
            text: &text,
            mounts: &mounts,
            vars: &vars,
            sde: st.sde() || assigns_sde,
            apt_snapshot: st.apt_snapshot,
            context: self.context,
        };
        checks::check_run(&ctx, p);
        Ok(())
    }
}
