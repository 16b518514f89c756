//! The `kiln lint` command line: [`LintArgs`] for the `kiln` binary to
//! embed, and [`run`], which prints the report and returns the exit code.

use crate::report::{rules_json, rules_sarif, write_rules_text};
use crate::{lint_bytes, BuildContext, LintError, LintOptions};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Output format of `kiln lint`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Format {
    /// `Dockerfile:LINE RULE severity: message` plus a `fix:` line.
    #[default]
    Text,
    /// One JSON object, findings sorted by line then rule id.
    Json,
    /// SARIF 2.1.0.
    Sarif,
}

/// `kiln lint [-f Dockerfile] [CONTEXT]`: finds what makes an image built
/// from a Dockerfile differ from one build to the next.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct LintArgs {
    /// The Dockerfile [default: CONTEXT/Dockerfile].
    #[arg(short = 'f', long = "file", value_name = "PATH")]
    pub file: Option<PathBuf>,
    /// The build context directory (its .dockerignore and .git are checked).
    #[arg(value_name = "CONTEXT", default_value = ".")]
    pub context: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Print the rules (in --format) and exit.
    #[arg(long)]
    pub list_rules: bool,
    /// A build arg the build will get, to resolve ARG-templated images (repeatable).
    #[arg(long = "build-arg", value_name = "NAME=VALUE")]
    pub build_args: Vec<String>,
    /// A named build context that replaces an image, as for buildx/buildctl,
    /// e.g. `busybox=oci-layout://base@sha256:...` (repeatable).
    #[arg(long = "build-context", value_name = "NAME=VALUE")]
    pub build_contexts: Vec<String>,
}

fn pairs(values: &[String], flag: &str) -> Result<BTreeMap<String, String>, LintError> {
    values
        .iter()
        .map(|v| match v.split_once('=') {
            Some((k, val)) if !k.is_empty() => Ok((k.to_string(), val.to_string())),
            _ => Err(LintError::Usage(format!(
                "{flag} {v:?}: expected NAME=VALUE"
            ))),
        })
        .collect()
}

/// Whether the file asks for the Dockerfile "labs" channel (`# syntax=...labs`).
fn wants_labs(data: &[u8]) -> bool {
    let text = String::from_utf8_lossy(&data[..data.len().min(4096)]);
    text.lines()
        .take_while(|l| l.trim_start().starts_with('#'))
        .any(|l| {
            let l = l.to_ascii_lowercase();
            l.contains("syntax") && l.contains("labs")
        })
}

/// Runs `kiln lint`: writes the report (or the rule list) to `out` and
/// returns the exit code: 0 when clean or only warnings/info, 1 when any
/// finding is an error. Unreadable or malformed input is a [`LintError`]
/// (the CLI exits 2 with its message, which names the file and line).
pub fn run(args: &LintArgs, out: &mut dyn Write) -> Result<i32, LintError> {
    if args.list_rules {
        match args.format {
            Format::Text => write_rules_text(out)?,
            Format::Json => writeln!(out, "{:#}", rules_json())?,
            Format::Sarif => writeln!(out, "{:#}", rules_sarif())?,
        }
        return Ok(0);
    }
    let opts = LintOptions {
        build_args: pairs(&args.build_args, "--build-arg")?,
        build_contexts: pairs(&args.build_contexts, "--build-context")?,
    };
    let (path, shown) = match &args.file {
        Some(f) => (f.clone(), f.display().to_string()),
        None if args.context == Path::new(".") => {
            (PathBuf::from("Dockerfile"), "Dockerfile".to_string())
        }
        None => {
            let p = args.context.join("Dockerfile");
            let shown = p.display().to_string();
            (p, shown)
        }
    };
    let data = kiln_dockerfile::read_file(&path).map_err(|source| LintError::Read {
        path: path.clone(),
        source,
    })?;
    let context = BuildContext::open(&args.context, &path)?;
    let report = lint_bytes(&data, &shown, wants_labs(&data), Some(&context), &opts)?;
    match args.format {
        Format::Text => report.write_text(out)?,
        Format::Json => writeln!(out, "{:#}", report.to_json())?,
        Format::Sarif => writeln!(out, "{:#}", report.to_sarif())?,
    }
    Ok(report.exit_code())
}
