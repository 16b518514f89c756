//! Errors, split the way kiln's exit codes are: the user's input (2) or the machine (3).

use kiln_dockerfile::{GraphError, ParseError};

/// Why planning, a BuildKit run or a cross-check failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The Dockerfile does not parse (kiln reads it like BuildKit's built-in frontend).
    #[error(transparent)]
    Parse(#[from] ParseError),
    /// The stage graph or `--target` is wrong.
    #[error(transparent)]
    Graph(#[from] GraphError),
    /// Bad arguments or a request BuildKit cannot be given (exit code 2).
    #[error("{0}")]
    Input(String),
    /// No driver, a driver that failed, or an unreadable result (exit code 3).
    #[error("{0}")]
    Environment(String),
}

impl Error {
    /// The exit code of kiln's contract: 2 bad input, 3 environment.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Parse(_) | Error::Graph(_) | Error::Input(_) => 2,
            Error::Environment(_) => 3,
        }
    }

    pub(crate) fn input(message: impl Into<String>) -> Error {
        Error::Input(message.into())
    }

    pub(crate) fn env(message: impl Into<String>) -> Error {
        Error::Environment(message.into())
    }
}
