//! The error type of Dockerfile parsing.

/// A Dockerfile that BuildKit would refuse, with the lines it concerns.
///
/// Displays as `FILE:LINE: MESSAGE`, e.g. `Dockerfile:12: unknown instruction: FOO`.
/// The message texts are BuildKit v0.19.0's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}: {message}")]
pub struct ParseError {
    /// The file name the caller passed to [`crate::parse`].
    pub file: String,
    /// The first (1-based) line of the offending instruction.
    pub line: usize,
    /// The last line of the offending instruction (equal to `line` for one-line problems).
    pub end_line: usize,
    /// What is wrong, in BuildKit's words.
    pub message: String,
}

/// An error located in the file, before the file name is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Located {
    pub(crate) line: usize,
    pub(crate) end_line: usize,
    pub(crate) message: String,
}

impl Located {
    pub(crate) fn new(line: usize, end_line: usize, message: impl Into<String>) -> Located {
        Located {
            line,
            end_line: end_line.max(line),
            message: message.into(),
        }
    }

    pub(crate) fn into_error(self, file: &str) -> ParseError {
        ParseError {
            file: file.to_string(),
            line: self.line,
            end_line: self.end_line,
            message: self.message,
        }
    }
}
