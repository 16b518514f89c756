//! The error type: everything that stops `kiln lint` from judging a Dockerfile.

use std::path::PathBuf;

/// Why linting could not be done (the CLI exits 2 on these).
#[derive(Debug, thiserror::Error)]
pub enum LintError {
    /// The Dockerfile could not be read.
    #[error("cannot read Dockerfile {}: {source}", path.display())]
    Read {
        /// The Dockerfile path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// BuildKit would reject the Dockerfile (`FILE:LINE: message`).
    #[error(transparent)]
    Parse(#[from] kiln_dockerfile::ParseError),
    /// A value could not be expanded (bad variable syntax or an invalid mount).
    #[error("{file}:{line}: {message}")]
    Expand {
        /// The Dockerfile name.
        file: String,
        /// 1-based line of the instruction.
        line: usize,
        /// What went wrong.
        message: String,
    },
    /// The build context is missing or its `.dockerignore` is unreadable or invalid.
    #[error("build context {}: {message}", path.display())]
    Context {
        /// The context directory or the ignore file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// A command-line value is malformed (e.g. `--build-arg` without `=`).
    #[error("{0}")]
    Usage(String),
    /// Writing the report failed.
    #[error("cannot write the report: {0}")]
    Output(#[from] std::io::Error),
}
