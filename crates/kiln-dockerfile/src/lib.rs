//! Dockerfile front end of kiln: reads Dockerfiles exactly like BuildKit
//! v0.19.0's built-in Dockerfile frontend.
//!
//! * [`parse`] turns the text into a [`Dockerfile`]: parser directives, meta
//!   args (ARGs before the first FROM), [`Stage`]s of typed [`Command`]s, the
//!   comment lines and parser warnings, all with 1-based line numbers.
//!   Errors are [`ParseError`]s displayed as `Dockerfile:12: unknown instruction: FOO`.
//! * Values stay as written where BuildKit expands them at dispatch time;
//!   [`Lexer`] is a port of BuildKit's shell lexer and
//!   [`Instruction::expand`] applies it to exactly the fields BuildKit
//!   expands (table in the [`expand`] module docs).
//! * [`StageGraph`] resolves `FROM <stage>`, `COPY --from` and
//!   `RUN --mount from=` to stages or images, picks the `--target` and lists
//!   what it depends on.
//! * [`IgnoreMatcher`] implements `.dockerignore` (moby/patternmatcher
//!   v0.6.0 and the fsutil context walker), [`find_dockerignore`] the lookup order.
//!
//! Several Go standard-library behaviours are re-implemented (in `gocompat`)
//! because byte-exact compatibility demands Go's rules, not Rust's.

mod error;
pub mod expand;
mod flags;
mod gocompat;
mod heredoc;
mod ignore;
mod instruction;
mod lex;
mod mount;
mod stages;
mod syntax;

pub use error::ParseError;
pub use expand::{ExpandError, Expanded, ExpandedFrom, ExpandedRun};
/// Go's `path/filepath.Match` (Unix), which BuildKit also uses for COPY wildcards.
pub use gocompat::filepath::{matches as filepath_match, BadPattern};
/// Go's `strconv.Quote` and `strconv.QuoteRune` (what `%q` prints), with Go's notion of a
/// printable rune: BuildKit writes them into history lines and messages.
pub use gocompat::strconv::{quote as go_quote, quote_rune as go_quote_rune};
pub use heredoc::{chomp_content, Heredoc};
pub use ignore::{
    find_dockerignore, read_patterns, IgnoreError, IgnoreMatcher, MatchInfo, WalkDecision,
};
pub use instruction::{
    Add, Arg, ArgDef, Cmd, Copy, Entrypoint, Env, Expose, From, Healthcheck, InlineFile,
    InlineScript, Instruction, KeyValue, Label, Maintainer, NetworkMode, Onbuild, Run, RunArgs,
    Security, Shell, ShellOrExec, StopSignal, User, Volume, Workdir,
};
pub use lex::{EnvList, EnvLookup, LexError, Lexer, NoEnv, Processed, MAX_SUBSTITUTION_DEPTH};
pub use mount::{CacheSharing, Mount, MountType};
pub use stages::{GraphError, StageGraph, StageRef};
pub use syntax::{Comment, Directive, Warning};

use error::Located;
use instruction::{parse_node, Parsed};
use std::collections::BTreeMap;

/// Parsing choices that BuildKit makes at build time rather than from the text.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ParseOptions {
    /// Accept the Dockerfile "labs" channel flags (`COPY --parents`,
    /// `COPY/ADD --exclude`, `RUN --security`). BuildKit's built-in frontend
    /// rejects them as unknown flags; the `docker/dockerfile:1-labs` frontend
    /// image accepts them.
    pub labs: bool,
}

/// One instruction with where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    /// 1-based first line.
    pub line: usize,
    /// 1-based last line (heredoc bodies included).
    pub end_line: usize,
    /// The instruction text: continuations joined, comments removed, trimmed
    /// (BuildKit's `String()` of a command, used in build step names).
    pub original: String,
    /// The instruction.
    pub instruction: Instruction,
}

/// An ARG before the first FROM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetaArg {
    /// 1-based first line.
    pub line: usize,
    /// 1-based last line.
    pub end_line: usize,
    /// The instruction text.
    pub original: String,
    /// The declared names.
    pub arg: Arg,
}

/// A build stage: a FROM and the instructions up to the next FROM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stage {
    /// Position among the stages (what `COPY --from=N` refers to).
    pub index: usize,
    /// The stage name (lower-cased), if `AS name` was given.
    pub name: Option<String>,
    /// The FROM line.
    pub from: From,
    /// 1-based line of the FROM.
    pub line: usize,
    /// 1-based last line of the FROM.
    pub end_line: usize,
    /// The FROM instruction text.
    pub original: String,
    /// The stage's instructions.
    pub commands: Vec<Command>,
}

/// A parsed Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dockerfile {
    /// The file name given to [`parse`], used in error messages.
    pub file: String,
    /// The parser directives at the top, in order.
    pub directives: Vec<Directive>,
    /// The escape character (`\` or `` ` `` from `# escape=`).
    pub escape: char,
    /// ARGs before the first FROM.
    pub meta_args: Vec<MetaArg>,
    /// The stages, in order (at least one).
    pub stages: Vec<Stage>,
    /// Every comment line (parser directives excluded).
    pub comments: Vec<Comment>,
    /// Parser warnings (empty continuation lines).
    pub warnings: Vec<Warning>,
}

impl Dockerfile {
    /// The lexer for this file's escape character.
    pub fn lexer(&self) -> Lexer {
        Lexer::new(self.escape)
    }

    /// The value of a parser directive (`syntax`, `escape` or `check`).
    pub fn directive(&self, name: &str) -> Option<&str> {
        self.directives
            .iter()
            .find(|d| d.name == name)
            .map(|d| d.value.as_str())
    }

    /// The meta-arg environment FROM lines are expanded with (BuildKit's
    /// `buildMetaArgs`): starts from `predefined` (BuildKit's
    /// `TARGETPLATFORM`, `BUILDPLATFORM`, ... and the build args that are
    /// predefined), then each meta ARG in order takes its build arg if given,
    /// else its default expanded with the args so far.
    pub fn meta_env(
        &self,
        predefined: &EnvList,
        build_args: &BTreeMap<String, String>,
    ) -> Result<EnvList, ParseError> {
        let lex = self.lexer();
        let mut env = predefined.clone();
        for m in &self.meta_args {
            for a in &m.arg.args {
                let value = match (build_args.get(&a.key), &a.default) {
                    (Some(v), _) => Some(v.clone()),
                    (None, Some(d)) => Some(lex.process_word(d, &env).map_err(|e| ParseError {
                        file: self.file.clone(),
                        line: m.line,
                        end_line: m.end_line,
                        message: e.to_string(),
                    })?),
                    (None, None) => None,
                };
                if let Some(v) = value {
                    env.set(&a.key, &v);
                }
            }
        }
        Ok(env)
    }

    /// Index of the stage called `name` (case-insensitive).
    pub fn stage_by_name(&self, name: &str) -> Option<usize> {
        let lower = name.to_lowercase();
        self.stages
            .iter()
            .position(|s| s.name.as_deref() == Some(lower.as_str()))
    }
}

/// Parses a Dockerfile like BuildKit v0.19.0 with default options.
/// `file_name` only labels errors (`file_name:LINE: message`).
pub fn parse(text: &str, file_name: &str) -> Result<Dockerfile, ParseError> {
    parse_with(text, file_name, ParseOptions::default())
}

/// Parses raw bytes; BuildKit accepts any bytes but kiln needs UTF-8, so
/// invalid UTF-8 is an error naming its line.
pub fn parse_bytes(
    data: &[u8],
    file_name: &str,
    options: ParseOptions,
) -> Result<Dockerfile, ParseError> {
    match std::str::from_utf8(data) {
        Ok(text) => parse_with(text, file_name, options),
        Err(e) => {
            let line = data[..e.valid_up_to()]
                .iter()
                .filter(|&&b| b == b'\n')
                .count()
                + 1;
            Err(ParseError {
                file: file_name.to_string(),
                line,
                end_line: line,
                message: "invalid UTF-8 in Dockerfile".into(),
            })
        }
    }
}

/// The largest Dockerfile kiln parses. Each instruction costs about 1 KB once parsed, so
/// 16 MiB of one-line instructions already need 1.6 GB; BuildKit's gateway frontends
/// receive files over gRPC in messages of at most 16 MiB.
pub const MAX_DOCKERFILE_SIZE: usize = 16 << 20;

/// Reads the Dockerfile at `path`, at most one byte more than [`MAX_DOCKERFILE_SIZE`] (so
/// that parsing refuses a larger one without it being read whole).
pub fn read_file(path: &std::path::Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut data = Vec::new();
    std::fs::File::open(path)?
        .take(MAX_DOCKERFILE_SIZE as u64 + 1)
        .read_to_end(&mut data)?;
    Ok(data)
}

/// Parses a Dockerfile with explicit [`ParseOptions`].
pub fn parse_with(
    text: &str,
    file_name: &str,
    options: ParseOptions,
) -> Result<Dockerfile, ParseError> {
    if text.len() > MAX_DOCKERFILE_SIZE {
        return Err(ParseError {
            file: file_name.to_string(),
            line: 1,
            end_line: 1,
            message: format!(
                "the Dockerfile is larger than {} MiB, kiln's limit",
                MAX_DOCKERFILE_SIZE >> 20
            ),
        });
    }
    let lines = syntax::parse_lines(text).map_err(|e| e.into_error(file_name))?;
    let mut meta_args = Vec::new();
    let mut stages: Vec<Stage> = Vec::new();
    for node in &lines.nodes {
        let at =
            |msg: String| Located::new(node.start_line, node.end_line, msg).into_error(file_name);
        let original = node
            .original
            .trim_matches(gocompat::unicode::is_space)
            .to_string();
        match parse_node(node, &options).map_err(at)? {
            Parsed::From(from) => stages.push(Stage {
                index: stages.len(),
                name: from.name.clone(),
                from,
                line: node.start_line,
                end_line: node.end_line,
                original,
                commands: Vec::new(),
            }),
            Parsed::Instruction(Instruction::Arg(arg)) if stages.is_empty() => {
                meta_args.push(MetaArg {
                    line: node.start_line,
                    end_line: node.end_line,
                    original,
                    arg,
                });
            }
            Parsed::Instruction(instruction) => {
                let Some(stage) = stages.last_mut() else {
                    return Err(at("no build stage in current context".into()));
                };
                stage.commands.push(Command {
                    line: node.start_line,
                    end_line: node.end_line,
                    original,
                    instruction,
                });
            }
        }
    }
    if stages.is_empty() {
        let line = lines.nodes.last().map_or(1, |n| n.end_line);
        return Err(
            Located::new(line, line, "dockerfile contains no stages to build")
                .into_error(file_name),
        );
    }
    Ok(Dockerfile {
        file: file_name.to_string(),
        directives: lines.directives,
        escape: lines.escape,
        meta_args,
        stages,
        comments: lines.comments,
        warnings: lines.warnings,
    })
}
