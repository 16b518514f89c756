//! Dispatch-time variable expansion, field by field as BuildKit v0.19.0 does it.
//!
//! BuildKit expands, with the stage's current environment (ENV values and ARG
//! values in scope) and the Dockerfile's escape character:
//!
//! | instruction | expanded fields |
//! |---|---|
//! | COPY | sources, destination, `--chown`, `--chmod` (not `--from`), heredoc bodies unless the delimiter was quoted |
//! | ADD | sources, destination, `--chown`, `--chmod`, `--checksum`, heredoc bodies unless quoted |
//! | ENV, LABEL | keys and values |
//! | WORKDIR, USER, STOPSIGNAL | the value |
//! | VOLUME | every path |
//! | EXPOSE | every word, *split* into words (`ProcessWords`) |
//! | RUN | only the `--mount` values |
//! | ARG | only the default, and only when no build arg overrides it ([`ArgDef::resolve`]) |
//! | FROM | image and `--platform`, with the meta args ([`From::expand`]) |
//! | CMD, ENTRYPOINT, SHELL, HEALTHCHECK, ONBUILD, MAINTAINER, RUN's command | nothing |
//!
//! Heredoc bodies are expanded by a separate lexer that always uses `\` as
//! escape and leaves quotes alone. [`Instruction::expand`] covers every
//! instruction so an engine matching on [`Expanded`] cannot forget one.

use crate::instruction::*;
use crate::lex::{EnvLookup, LexError, Lexer};
use crate::mount::{parse_mount, Mount};
use std::collections::BTreeMap;

/// A dispatch-time failure: bad variable syntax or an invalid expanded value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExpandError {
    /// The lexer rejected a word.
    #[error(transparent)]
    Lex(#[from] LexError),
    /// An expanded value is invalid (BuildKit's message).
    #[error("{0}")]
    Invalid(String),
}

/// RUN after expansion: the instruction plus its parsed mounts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpandedRun {
    /// The instruction (its command is never expanded by BuildKit).
    pub run: Run,
    /// The `--mount`s, expanded and validated.
    pub mounts: Vec<Mount>,
}

/// An instruction with BuildKit's dispatch-time expansion applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expanded {
    /// RUN with parsed mounts.
    Run(ExpandedRun),
    /// CMD, unchanged.
    Cmd(Cmd),
    /// ENTRYPOINT, unchanged.
    Entrypoint(Entrypoint),
    /// SHELL, unchanged.
    Shell(Shell),
    /// COPY with sources, destination, chown, chmod and heredoc bodies expanded.
    Copy(Copy),
    /// ADD with sources, destination, chown, chmod, checksum and heredoc bodies expanded.
    Add(Add),
    /// ENV with keys and values expanded.
    Env(Env),
    /// LABEL with keys and values expanded.
    Label(Label),
    /// ARG, unchanged: resolve each name with [`ArgDef::resolve`].
    Arg(Arg),
    /// WORKDIR with the path expanded.
    Workdir(Workdir),
    /// USER with the user expanded.
    User(User),
    /// EXPOSE with every word expanded and split.
    Expose(Expose),
    /// VOLUME with every path expanded.
    Volume(Volume),
    /// STOPSIGNAL with the signal expanded.
    StopSignal(StopSignal),
    /// HEALTHCHECK, unchanged.
    Healthcheck(Healthcheck),
    /// ONBUILD, unchanged.
    Onbuild(Onbuild),
    /// MAINTAINER, unchanged.
    Maintainer(Maintainer),
}

fn word(lex: &Lexer, env: &dyn EnvLookup, w: &str) -> Result<String, ExpandError> {
    Ok(lex.process_word(w, env)?)
}

fn opt_word(
    lex: &Lexer,
    env: &dyn EnvLookup,
    w: &Option<String>,
) -> Result<Option<String>, ExpandError> {
    match w {
        None => Ok(None),
        Some(w) => Ok(Some(word(lex, env, w)?).filter(|s| !s.is_empty())),
    }
}

fn words(lex: &Lexer, env: &dyn EnvLookup, ws: &[String]) -> Result<Vec<String>, ExpandError> {
    ws.iter().map(|w| word(lex, env, w)).collect()
}

fn inline(
    lex: &Lexer,
    env: &dyn EnvLookup,
    files: &[InlineFile],
) -> Result<Vec<InlineFile>, ExpandError> {
    let lex = lex.for_heredoc_bodies();
    files
        .iter()
        .map(|f| {
            let data = if f.expand {
                lex.process_word(&f.data, env)?
            } else {
                f.data.clone()
            };
            Ok(InlineFile { data, ..f.clone() })
        })
        .collect()
}

fn key_values(
    lex: &Lexer,
    env: &dyn EnvLookup,
    kvs: &[KeyValue],
) -> Result<Vec<KeyValue>, ExpandError> {
    kvs.iter()
        .map(|kv| {
            Ok(KeyValue {
                key: word(lex, env, &kv.key)?,
                value: word(lex, env, &kv.value)?,
                legacy: kv.legacy,
            })
        })
        .collect()
}

impl Run {
    /// Parses the `--mount` values with every value expanded.
    pub fn expand_mounts(
        &self,
        lex: &Lexer,
        env: &dyn EnvLookup,
    ) -> Result<Vec<Mount>, ExpandError> {
        // Keep the lexer's own error (not just its text) for the caller.
        let lex_err = std::cell::RefCell::new(None);
        let mut f = |v: &str| {
            lex.process_word(v, env).map_err(|e| {
                let msg = e.to_string();
                *lex_err.borrow_mut() = Some(e);
                msg
            })
        };
        let mut out = Vec::new();
        for spec in &self.mounts {
            match parse_mount(spec, Some(&mut f)) {
                Ok(m) => out.push(m),
                Err(msg) => {
                    return Err(match lex_err.borrow_mut().take() {
                        Some(e) => ExpandError::Lex(e),
                        None => ExpandError::Invalid(msg),
                    })
                }
            }
        }
        Ok(out)
    }
}

impl Copy {
    /// COPY with sources, destination, `--chown`, `--chmod` and heredoc bodies expanded.
    pub fn expand(&self, lex: &Lexer, env: &dyn EnvLookup) -> Result<Copy, ExpandError> {
        // BuildKit's order: chown, chmod, sources, destination, heredocs.
        let chown = opt_word(lex, env, &self.chown)?;
        let chmod = opt_word(lex, env, &self.chmod)?;
        let srcs = words(lex, env, &self.srcs)?;
        let dest = word(lex, env, &self.dest)?;
        let inline = inline(lex, env, &self.inline)?;
        Ok(Copy {
            srcs,
            inline,
            dest,
            chown,
            chmod,
            ..self.clone()
        })
    }
}

impl Add {
    /// ADD with sources, destination, `--chown`, `--chmod`, `--checksum` and heredoc bodies expanded.
    pub fn expand(&self, lex: &Lexer, env: &dyn EnvLookup) -> Result<Add, ExpandError> {
        let chown = opt_word(lex, env, &self.chown)?;
        let chmod = opt_word(lex, env, &self.chmod)?;
        let checksum = opt_word(lex, env, &self.checksum)?;
        let srcs = words(lex, env, &self.srcs)?;
        let dest = word(lex, env, &self.dest)?;
        let inline = inline(lex, env, &self.inline)?;
        Ok(Add {
            srcs,
            inline,
            dest,
            chown,
            chmod,
            checksum,
            ..self.clone()
        })
    }
}

impl ArgDef {
    /// The value this ARG takes at dispatch (BuildKit's `dispatchArg`):
    /// the build arg if given; else the default expanded with the stage
    /// environment `env`; else, for a bare `ARG NAME`, the meta arg of that
    /// name; else none.
    ///
    /// Expand one name at a time and add each resolved value to `env`
    /// before resolving the next: later names see earlier ones.
    pub fn resolve(
        &self,
        lex: &Lexer,
        env: &dyn EnvLookup,
        build_args: &BTreeMap<String, String>,
        meta_args: &dyn EnvLookup,
    ) -> Result<Option<String>, ExpandError> {
        if let Some(v) = build_args.get(&self.key) {
            return Ok(Some(v.clone()));
        }
        match &self.default {
            Some(d) => Ok(Some(word(lex, env, d)?)),
            None => Ok(meta_args.lookup(&self.key).map(str::to_string)),
        }
    }
}

/// FROM after expansion with the meta args.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpandedFrom {
    /// The base image reference or stage name.
    pub image: String,
    /// The platform, if `--platform` was given.
    pub platform: Option<String>,
}

impl From {
    /// Expands the base name and `--platform` with the meta args (ARGs before
    /// the first FROM, build args and BuildKit's predefined platform args).
    pub fn expand(&self, lex: &Lexer, meta: &dyn EnvLookup) -> Result<ExpandedFrom, ExpandError> {
        let image = word(lex, meta, &self.image)?;
        if image.is_empty() {
            return Err(ExpandError::Invalid(format!(
                "base name ({}) should not be blank",
                self.image
            )));
        }
        let platform = match &self.platform {
            None => None,
            Some(p) => {
                let v = lex.process_word(p, meta).map_err(|e| {
                    ExpandError::Invalid(format!("failed to process arguments for platform : {e}"))
                })?;
                if v.is_empty() {
                    return Err(ExpandError::Invalid(format!(
                        "empty platform value from expression {p}"
                    )));
                }
                Some(v)
            }
        };
        Ok(ExpandedFrom { image, platform })
    }
}

impl Instruction {
    /// Applies BuildKit's dispatch-time expansion with the stage environment `env`.
    pub fn expand(&self, lex: &Lexer, env: &dyn EnvLookup) -> Result<Expanded, ExpandError> {
        Ok(match self {
            Instruction::Run(r) => Expanded::Run(ExpandedRun {
                run: r.clone(),
                mounts: r.expand_mounts(lex, env)?,
            }),
            Instruction::Cmd(c) => Expanded::Cmd(c.clone()),
            Instruction::Entrypoint(e) => Expanded::Entrypoint(e.clone()),
            Instruction::Shell(s) => Expanded::Shell(s.clone()),
            Instruction::Copy(c) => Expanded::Copy(c.expand(lex, env)?),
            Instruction::Add(a) => Expanded::Add(a.expand(lex, env)?),
            Instruction::Env(e) => Expanded::Env(Env {
                vars: key_values(lex, env, &e.vars)?,
            }),
            Instruction::Label(l) => Expanded::Label(Label {
                labels: key_values(lex, env, &l.labels)?,
            }),
            Instruction::Arg(a) => Expanded::Arg(a.clone()),
            Instruction::Workdir(w) => Expanded::Workdir(Workdir {
                path: word(lex, env, &w.path)?,
            }),
            Instruction::User(u) => Expanded::User(User {
                user: word(lex, env, &u.user)?,
            }),
            Instruction::Expose(e) => {
                let mut ports = Vec::new();
                for p in &e.ports {
                    ports.extend(lex.process_words(p, env)?);
                }
                Expanded::Expose(Expose { ports })
            }
            Instruction::Volume(v) => {
                let volumes = words(lex, env, &v.volumes)?;
                if volumes.iter().any(String::is_empty) {
                    return Err(ExpandError::Invalid(
                        "VOLUME specified can not be an empty string".into(),
                    ));
                }
                Expanded::Volume(Volume { volumes })
            }
            Instruction::StopSignal(s) => Expanded::StopSignal(StopSignal {
                signal: word(lex, env, &s.signal)?,
            }),
            Instruction::Healthcheck(h) => Expanded::Healthcheck(h.clone()),
            Instruction::Onbuild(o) => Expanded::Onbuild(o.clone()),
            Instruction::Maintainer(m) => Expanded::Maintainer(m.clone()),
        })
    }
}
