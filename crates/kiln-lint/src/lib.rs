//! `kiln lint`: finds what makes an image built from a Dockerfile differ from
//! one build to the next, before anything is built.
//!
//! Each finding names a rule of the data-driven table [`RULES`] (id such as
//! `KL002`, slug, severity, what breaks, the fix, a reference), the line of
//! the instruction, and what exactly was seen. Rules cover floating base
//! images, unpinned apt/dnf/apk/pip/npm installs, apt lists and dated logs
//! left in layers, `/etc/shadow` dates, the clock, randomness, mktemp names,
//! the build host's identity, unchecked downloads and git branches, Go and
//! Python build flags, `.git` leaking from the build context and a missing
//! `ARG SOURCE_DATE_EPOCH`; `kiln lint --list-rules` prints them all.
//!
//! How it works: the Dockerfile is read by `kiln-dockerfile` (BuildKit's own
//! parsing rules); each stage tracks its ENV/ARG values; the text of every
//! RUN is split by a small shell reader ([`shell`]) into simple commands, so
//! `apt-get install -y curl=7.88.1-10` counts as pinned and
//! `apt-get install -y curl` does not. Rules that need the build context
//! (`.dockerignore`, `.git`) look at the CONTEXT directory.
//!
//! A comment `# kiln:ignore=RULE[,RULE...]` right above an instruction (or
//! inside it, or at the end of a RUN's shell text) silences those rules
//! there; see [`suppress`].
//!
//! Entry points: [`run`] for the CLI ([`LintArgs`]), [`lint_str`] and
//! [`lint_bytes`] for a library caller.

mod checks;
mod cli;
mod context;
mod engine;
mod error;
mod paths;
mod report;
mod rules;
pub mod shell;
pub mod suppress;

pub use cli::{run, Format, LintArgs};
pub use context::BuildContext;
pub use engine::{lint, LintOptions};
pub use error::LintError;
pub use report::{rules_json, rules_markdown, rules_sarif, write_rules_text, Finding, Report};
pub use rules::{Rule, RuleId, Severity, RULES};

use kiln_dockerfile::ParseOptions;

/// Lints Dockerfile text. `file_name` labels findings and errors.
pub fn lint_str(
    text: &str,
    file_name: &str,
    context: Option<&BuildContext>,
    opts: &LintOptions,
) -> Result<Report, LintError> {
    let df = kiln_dockerfile::parse(text, file_name)?;
    Ok(Report {
        file: file_name.to_string(),
        findings: lint(&df, context, opts)?,
    })
}

/// Lints Dockerfile bytes (invalid UTF-8 is an error naming its line);
/// `labs` accepts the Dockerfile labs-channel flags.
pub fn lint_bytes(
    data: &[u8],
    file_name: &str,
    labs: bool,
    context: Option<&BuildContext>,
    opts: &LintOptions,
) -> Result<Report, LintError> {
    let df = kiln_dockerfile::parse_bytes(data, file_name, ParseOptions { labs })?;
    Ok(Report {
        file: file_name.to_string(),
        findings: lint(&df, context, opts)?,
    })
}
